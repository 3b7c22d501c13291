"""devhost as a separate process, killed with SIGKILL mid-work and restarted.

Nothing is lost: an instance waiting for an event resumes and completes exactly
once, and instances killed in the middle of their activities all finish.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from devhost.testing import MGMT, DevhostProcess, free_port

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).parent / "apps" / "durable_app"


def sample_host(data_dir: Path, log_path: Path) -> DevhostProcess:
    """The durable sample app in `python -m devhost start`."""
    return DevhostProcess(APP, data_dir, log_path)


def test_waiting_instance_survives_kill_9_and_completes_exactly_once(tmp_path: Path) -> None:
    host = sample_host(tmp_path / "data", tmp_path / "devhost.log")
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
    host = sample_host(tmp_path / "data", tmp_path / "devhost.log")
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
    first = sample_host(tmp_path / "data", tmp_path / "first.log")
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
