"""devhost as a separate process, killed with SIGKILL mid-work and restarted.

Nothing is lost: an instance waiting for an event resumes and completes exactly
once, and instances killed in the middle of their activities all finish.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).parent / "apps" / "durable_app"
MGMT = "/runtime/webhooks/durabletask"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DevhostProcess:
    """`python -m devhost start` on a fixed port and data dir, restartable."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "start", "--app-dir", str(APP),
             "--port", str(self.port), "--data-dir", str(self.data_dir)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"devhost exited: {self.log_path.read_text()[-2000:]}")
            try:
                self.request("GET", f"{MGMT}/instances")
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("devhost did not start within 30 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read().decode()
            return error.code, json.loads(text) if text else None

    def status(self, instance_id: str) -> dict[str, Any] | None:
        return self.request("GET", f"{MGMT}/instances/{instance_id}")[1]

    def wait_for(self, instance_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(instance_id)
            if status and status["runtimeStatus"] in statuses:
                return status
            time.sleep(0.05)
        raise AssertionError(f"{instance_id} not {statuses} after {timeout} s: {status}")


def test_waiting_instance_survives_kill_9_and_completes_exactly_once(tmp_path: Path) -> None:
    host = DevhostProcess(tmp_path / "data", tmp_path / "devhost.log")
    journal = tmp_path / "journal.txt"
    host.start()
    try:
        code, _ = host.request("POST", f"{MGMT}/orchestrators/journal/crash-1",
                               {"path": str(journal)})
        assert code == 202
        deadline = time.monotonic() + 20
        while not journal.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        host.wait_for("crash-1", "Running")
        time.sleep(0.2)  # let the episode that recorded "before" commit
        host.kill()

        host.start()
        assert host.status("crash-1")["runtimeStatus"] == "Running"
        code, _ = host.request("POST", f"{MGMT}/instances/crash-1/raiseEvent/Go", "yes")
        assert code == 202
        status = host.wait_for("crash-1", "Completed", "Failed")
        assert status["runtimeStatus"] == "Completed"
        assert status["output"] == {"decision": "yes"}
        assert journal.read_text().splitlines() == ["before", "after yes"]
        completed = [e for e in host.request(
            "GET", f"{MGMT}/instances/crash-1?showHistory=true")[1]["historyEvents"]
            if e["EventType"] == "ExecutionCompleted"]
        assert len(completed) == 1
    finally:
        host.stop()


def test_instances_killed_mid_flight_all_finish_after_restart(tmp_path: Path) -> None:
    host = DevhostProcess(tmp_path / "data", tmp_path / "devhost.log")
    host.start()
    ids = [f"mid-{n}" for n in range(30)]
    try:
        for instance_id in ids:
            code, _ = host.request("POST", f"{MGMT}/orchestrators/long_history/{instance_id}", 40)
            assert code == 202
        time.sleep(0.3)
        host.kill()
        unfinished = unfinished_instances(tmp_path / "data" / "DurableSample.sqlite")
        assert unfinished, "the kill came too late to interrupt anything"
        host.start()
        expected = sum(n * n for n in range(40))
        for instance_id in ids:
            status = host.wait_for(instance_id, "Completed", "Failed", timeout=60)
            assert (status["runtimeStatus"], status["output"]) == ("Completed", expected)
    finally:
        host.stop()


def unfinished_instances(hub: Path) -> list[str]:
    with sqlite3.connect(hub) as db:
        rows = db.execute("SELECT instance_id FROM instances WHERE status != 'Completed'")
        return [instance_id for (instance_id,) in rows]


def test_second_devhost_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    first = DevhostProcess(tmp_path / "data", tmp_path / "first.log")
    first.start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "devhost", "start", "--app-dir", str(APP),
             "--port", str(free_port()), "--data-dir", str(tmp_path / "data")],
            cwd=REPO, capture_output=True, text=True, timeout=30,
            env={**os.environ, "PYTHONPATH": str(REPO)})
        assert second.returncode != 0
        assert "in use by another devhost process" in second.stderr
    finally:
        first.stop()
