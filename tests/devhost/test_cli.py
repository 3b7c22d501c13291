"""`python -m devhost start` as a subprocess: serving, signals, start-up errors."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import sysconfig
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


APP_ELSEWHERE = """
import json
import os
from pathlib import Path

import azure.functions as func

import greetings

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="where", methods=["GET"])
def where(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({
        "cwd": os.getcwd(), "module": greetings.__file__,
        "greeting": Path(os.environ["GREETING_FILE"]).read_text()}))


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer")
def yearly(timer: func.TimerRequest) -> None:  # keeps its schedule status in the data dir
    pass
"""


def test_starts_from_any_folder_with_paths_relative_to_the_app(tmp_path) -> None:
    app, caller = tmp_path / "app", tmp_path / "elsewhere"
    (app / "data").mkdir(parents=True)
    caller.mkdir()
    (app / "function_app.py").write_text(APP_ELSEWHERE)
    (app / "greetings.py").write_text("WORD = 'hello'\n")
    (app / "data" / "greeting.txt").write_text("hello from the app folder")
    (app / "local.settings.json").write_text(json.dumps(
        {"IsEncrypted": False, "Values": {"GREETING_FILE": "data/greeting.txt"}}))
    (caller / "greetings.py").write_text("raise ImportError('the caller folder shadowed the app')")

    body, logged = serve_once(["--app-dir", "../app", "--data-dir", "state"], "/api/where",
                              caller)
    assert json.loads(body) == {"cwd": str(app), "module": str(app / "greetings.py"),
                                "greeting": "hello from the app folder"}, logged
    assert (caller / "state" / "timers" / "yearly.json").is_file()
    assert not (app / "state").exists()


def test_a_venv_made_by_make_runs_devhost_from_any_folder(apps, tmp_path) -> None:
    """`make` puts the project on the venv's path: no PYTHONPATH, no project folder needed."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([venv / "bin" / "python", "-c", purelib], check=True,
                               capture_output=True, text=True).stdout.strip())
    # The requirements as the project's venv has them (make would pip install them).
    (site / "requirements.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (venv / ".requirements.stamp").touch()
    made = subprocess.run(["make", "-s", "-C", str(REPO), f"VENV={venv}",
                           f"{venv}/.project-path.stamp"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert (site / "release-workflow.pth").read_text().startswith("../")  # relative to site

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    process = subprocess.Popen(
        [venv / "bin" / "python", "-m", "devhost", "start", "--app-dir",
         str(apps / "http_app"), "--port", "0", "--data-dir", "data"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        url = wait_for_line(lines_of(process.stderr),
                            r"devhost listening on (http://127\.0\.0\.1:\d+)", seen)[1]
        with urllib.request.urlopen(f"{url}/api/hello?name=anywhere", timeout=10) as response:
            assert response.read() == b"Hello, anywhere"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
