"""Test helpers for apps run by devhost: `python -m devhost start` as a killable subprocess.

For tests of what survives a crash: start the host, drive it over HTTP, `kill()` it with
SIGKILL at any moment, `start()` it again on the same port and data directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

MGMT = "/runtime/webhooks/durabletask"
REPO = Path(__file__).resolve().parent.parent


async def instance_status(http: Any, base_url: str, instance_id: str) -> dict[str, Any] | None:
    """An instance's Durable status over HTTP with an aiohttp session; None when unknown."""
    async with http.get(f"{base_url.rstrip('/')}{MGMT}/instances/{instance_id}") as response:
        text = await response.text()
        return json.loads(text) if text else None


async def until_instance(http: Any, base_url: str, instance_id: str,
                         predicate: Callable[[dict[str, Any]], bool],
                         seconds: float = 60) -> dict[str, Any]:
    """Poll the status every 50 ms until `predicate` holds; AssertionError after `seconds`."""
    status = None
    for _ in range(int(seconds / 0.05)):
        status = await instance_status(http, base_url, instance_id)
        if status and predicate(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{instance_id}: condition not met; last status {status}")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DevhostProcess:
    """One app served by `python -m devhost start`, restartable on the same port and data."""

    def __init__(self, app_dir: Path, data_dir: Path, log_path: Path,
                 settings: dict[str, str] | None = None, port: int | None = None) -> None:
        self.app_dir, self.data_dir, self.log_path = app_dir, data_dir, log_path
        self.settings = settings or {}
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        """Start and wait until the management API answers (AssertionError with the log)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devhost", "start", "--app-dir", str(self.app_dir),
                 "--port", str(self.port), "--data-dir", str(self.data_dir)],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **self.settings, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"devhost exited: {self.log_path.read_text()[-3000:]}")
            try:
                self.request("GET", f"{MGMT}/instances")
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"devhost did not start within {timeout:g} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
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
                self.process.wait(10)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON body or None) of one request to the host."""
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

    def until(self, instance_id: str, predicate: Callable[[dict[str, Any]], bool],
              timeout: float = 30) -> dict[str, Any]:
        """Poll the status until `predicate` holds (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            status = self.status(instance_id)
            if status and predicate(status):
                return status
            time.sleep(0.05)
        raise AssertionError(f"{instance_id}: condition not met in {timeout:g} s: {status}")

    def wait_for(self, instance_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        """Poll until the instance is in one of `statuses`."""
        return self.until(instance_id, lambda s: s["runtimeStatus"] in statuses, timeout)
