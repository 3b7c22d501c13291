"""`python -m devhost start` as a subprocess: serving, signals, start-up errors."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from devhost.cli import main

REPO = Path(__file__).resolve().parents[2]


def devhost(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "devhost", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines_of(stream) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def wait_for_line(lines: queue.Queue[str], pattern: str, seen: list[str],
                  timeout: float = 20) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(line)
        if found := re.search(pattern, line):
            return found
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serves_http_and_stops_cleanly_on_signal(apps, tmp_path, signum) -> None:
    process = devhost("start", "--app-dir", str(apps / "http_app"), "--port", "0",
                      "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    seen: list[str] = []
    try:
        lines = lines_of(process.stderr)
        url = wait_for_line(lines, r"devhost listening on (http://127\.0\.0\.1:\d+)", seen)[1]
        assert any(f"hello: [GET] {url}/api/hello" in line for line in seen)
        with urllib.request.urlopen(f"{url}/api/hello?name=cli", timeout=5) as response:
            assert (response.status, response.read()) == (200, b"Hello, cli")
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        wait_for_line(lines, r"devhost stopping", seen, timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    process = devhost(*args, cwd=cwd)
    stdout, stderr = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_app_that_fails_to_import_exits_1_with_the_traceback(apps, tmp_path) -> None:
    result = run("start", "--app-dir", str(apps / "broken_import_app"), "--port", "0",
                 cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ImportError: devhost-test: missing dependency frobnicate" in result.stderr
    assert "broken_import_app/function_app.py" in result.stderr


def test_invalid_schedule_exits_1_naming_the_function(apps, tmp_path, capsys) -> None:
    code = main(["start", "--app-dir", str(apps / "bad_schedule_app"), "--port", "0",
                 "--data-dir", str(tmp_path / "data")])
    assert code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "devhost: cannot start: timer function five_field_cron:")


@pytest.mark.parametrize(("args", "message"), [
    (["start", "--app-dir", "."], "function_app.py not found"),
    (["start", "--port", "seventy"], "invalid int value"),
    (["start", "--app-dir", "APPS/http_app", "--port", "70000"], "out of range"),
    (["serve"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(apps, tmp_path, monkeypatch, capsys,
                                           args, message) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([a.replace("APPS", str(apps)) for a in args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


def serve_once(args: list[str], path: str, cwd: Path,
               env: dict[str, str] | None = None) -> tuple[bytes, str]:
    """Start devhost with `args`, GET `path`, stop it with SIGINT: (body, everything logged)."""
    process = subprocess.Popen([sys.executable, "-m", "devhost", "start", "--port", "0", *args],
                               cwd=cwd, env=env or {**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        lines = lines_of(process.stderr)
        url = wait_for_line(lines, r"devhost listening on (http://127\.0\.0\.1:\d+)", seen)[1]
        with urllib.request.urlopen(f"{url}{path}", timeout=30) as response:
            body = response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        wait_for_line(lines, r"devhost stopping", seen, timeout=5)
        time.sleep(0.2)  # the last lines
        while not lines.empty():
            seen.append(lines.get())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return body, "".join(seen)


HTTP_LOGGING = "azure.core.pipeline.policies.http_logging_policy"


def test_sdk_requests_are_logged_only_at_debug(apps, tmp_path, azurite) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "AzureWebJobsStorage": azurite.connection_string}
    app = ["--app-dir", str(apps / "storage_app"), "--data-dir", str(tmp_path / "data")]
    body, quiet = serve_once(app, "/api/tables", tmp_path, env)
    assert isinstance(json.loads(body), list)
    assert "devhost.invocations: tables (httpTrigger)" in quiet
    assert HTTP_LOGGING not in quiet and "Request headers" not in quiet

    body, verbose = serve_once([*app, "--log-level", "debug"], "/api/tables", tmp_path, env)
    assert isinstance(json.loads(body), list)
    assert f"INFO {HTTP_LOGGING}: Request URL: 'http://127.0.0.1:{azurite.table_port}" in verbose
    assert "'Authorization': 'REDACTED'" in verbose and azurite.connection_string not in verbose
