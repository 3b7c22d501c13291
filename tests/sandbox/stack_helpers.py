"""Helpers for the local stack's tests: processes under a pid, polling, the releases API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sandbox.stack import Ports

ANY_PORT = Ports(app=0, registry=0, kube=0, teams=0, control=0, prometheus=0, blob=0, queue=0,
                 table=0)
ANY_PORT_FLAGS = ["--port", "0", "--registry-port", "0", "--kube-port", "0",
                  "--teams-port", "0", "--control-port", "0", "--prometheus-port", "0",
                  "--blob-port", "0",
                  "--queue-port", "0", "--table-port", "0"]
REPO = Path(__file__).resolve().parents[2]


def descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid` (children, grandchildren, …) with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = command_line(child)
                frontier.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def stop_tree(process: subprocess.Popen[bytes], others: Iterable[int] = ()) -> None:
    """After a failed test: stop `process` (SIGTERM, then SIGKILL) and every process below it
    or in `others`, so a stack that never became healthy leaves nothing running."""
    left = set(descendants(process.pid)) | set(others)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in left:
        if running(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll `condition` until it is truthy; AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:g} s")


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except OSError:
        return 0, None


def python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}
