"""`python -m sandbox.run` (what `make run` starts) as a subprocess: healthy, then stopped by a
signal with no process left behind, its state kept for the next start."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sandbox.stack import FACTS_FILE, StackFacts, http_status, running_stack
from tests.sandbox.stack_helpers import (
    ANY_PORT_FLAGS,
    REPO,
    descendants,
    get_json,
    python_env,
    running,
    stop_tree,
    wait_until,
)

STANDINS = "sandbox.kube.standin_server"
START_SECONDS = 180  # a loaded 2-core machine; usually about 10 s
STOP_SECONDS = 60


@pytest.mark.timeout(START_SECONDS + STOP_SECONDS + 60)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_reaches_healthy_and_a_signal_stops_every_part(tmp_path: Path,
                                                           signum: signal.Signals) -> None:
    data = tmp_path / "data"
    output = tmp_path / "run.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.run", "--data-dir", str(data), *ANY_PORT_FLAGS],
            cwd=REPO, env=python_env(), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        facts = wait_until(lambda: _healthy(data, process), START_SECONDS,
                           f"the stack did not become healthy; output:\n{_tail(output)}")
        parts = descendants(process.pid)
        commands = " | ".join(parts.values())
        assert "devhost start" in commands and "docker-registry serve" in commands
        assert "azurite" in commands and "prometheus --config.file" in commands
        assert "sandbox.kube.standin_server" in commands
        status, health = get_json(facts.control_url + "/health")
        assert status == 200 and health["status"] == "ok", health
        text = output.read_text()
        assert f"prometheus  {facts.prometheus_url}" in text
        assert facts.dashboard_url in text and "make push SERVICE=delivery VERSION=1.0.1" in text
        for secret in ("webhook-token", "approval-signing-key", "control-token"):
            assert (data / secret).read_text().strip() not in text
            assert (data / secret).stat().st_mode & 0o077 == 0
        assert f"pushed chart oci://{facts.registry_host}/helm/delivery:" in text
        assert "make push SERVICE=web VERSION=1.0.0" in text
        assert "web: pushed web:0.9.0 and prod/web:0.9.0 (sha256:" in text
        assert "created qa/deployment/web" in text
        # The cluster starts with web's objects only (Helm installs `delivery`): give it one
        # more object to keep.
        _create_config_map(facts, "qa", "kept-across-restarts")

        process.send_signal(signum)
        assert process.wait(STOP_SECONDS) == 0, _tail(output)
    finally:
        stop_tree(process)
    left = {pid: command for pid, command in parts.items() if running(pid)}
    assert left == {}, f"processes left behind: {left}"
    assert not (data / FACTS_FILE).exists() and running_stack(data) is None
    assert http_status(facts.app_url + "/api/health") is None
    saved = json.loads((data / "kube" / "objects.json").read_text())
    kept = {(entry["resource"], entry["object"]["metadata"]["namespace"],
             entry["object"]["metadata"]["name"]) for entry in saved["objects"]
            if not entry["object"]["metadata"]["name"].startswith("web")}
    assert kept == {("configmaps", "qa", "kept-across-restarts")}  # restored at the next start
    assert {(resource, namespace) for resource, namespace, name in (
        (entry["resource"], entry["object"]["metadata"]["namespace"],
         entry["object"]["metadata"]["name"]) for entry in saved["objects"])
        if name in ("web", "web-preview")} == {
        ("deployments", "qa"), ("deployments", "prod"), ("services", "qa"), ("services", "prod")}


def _create_config_map(facts: StackFacts, namespace: str, name: str) -> None:
    """POST a ConfigMap to the stack's cluster with the namespace's token."""
    token = Path(facts.kube_token_files[namespace]).read_text().strip()
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                       "data": {"note": "made by a test"}}).encode()
    request = urllib.request.Request(
        f"{facts.kube_url}/api/v1/namespaces/{namespace}/configmaps", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    context = ssl.create_default_context(cafile=facts.ca_file)
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:
        assert answer.status == 201


def _healthy(data: Path, process: subprocess.Popen[bytes]) -> StackFacts | None:
    assert process.poll() is None, f"sandbox.run exited with {process.returncode}"
    facts = running_stack(data)
    if facts is None or facts.pid != process.pid:
        return None
    return facts if http_status(facts.app_url + "/api/health") == 200 else None


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-30:])


@pytest.mark.timeout(2 * START_SECONDS + STOP_SECONDS + 60)
def test_the_next_start_ends_what_a_killed_run_left_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    command = [sys.executable, "-m", "sandbox.run", "--data-dir", str(data), *ANY_PORT_FLAGS]
    killed = subprocess.Popen(command, cwd=REPO, env=python_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _healthy(data, killed), START_SECONDS, "the first stack")
        parts = descendants(killed.pid)
        # The stand-ins' process ends by itself when its parent dies (its stdin closes).
        standins = [pid for pid, command in parts.items() if STANDINS in command]
        orphans = {pid: command for pid, command in parts.items() if pid not in standins}
        killed.kill()  # no cleanup at all: its other parts keep running
        killed.wait()
        assert orphans and all(running(pid) for pid in orphans)
        assert len(standins) == 1
        wait_until(lambda: not running(standins[0]), STOP_SECONDS, "the stand-ins ending")
    except BaseException:
        stop_tree(killed)
        raise
    output = tmp_path / "second.out"
    with output.open("wb") as out:
        second = subprocess.Popen(command, cwd=REPO, env=python_env(),
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _healthy(data, second), START_SECONDS,
                   f"the second stack; output:\n{_tail(output)}")
        assert [pid for pid in orphans if running(pid)] == []
        assert f"stopped {len(orphans)} process(es) a killed stack" in output.read_text()
        second.send_signal(signal.SIGINT)
        assert second.wait(STOP_SECONDS) == 0
    finally:
        stop_tree(second, orphans)
