"""Helpers the sandbox servers share: Debian tools, free ports, process and log handling,
private files and folders for what may hold a secret."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self


class ToolMissingError(RuntimeError):
    """A program the local stack runs is not installed."""


def require_tool(program: str, package: str) -> str:
    """Path of `program`, or an error telling the operator which Debian package to install."""
    path = shutil.which(program)
    if path is None:
        raise ToolMissingError(
            f"{program} not found: install it with `apt-get install -y {package}` "
            "(or run `make test` as root)"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner can enter (0700), made with its parents if missing."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_log(path: Path) -> BinaryIO:
    """`path` opened for appending, created or narrowed to mode 0600 first."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "ab")


def stop_process(process: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL when the process has not exited after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path: Path, offset: int = 0, lines: int = 20) -> str:
    """The last `lines` lines written to `path` after byte `offset` ('' when there is none)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Managed:
    """`with server:` starts it and stops it, for classes with start() and stop()."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ChildServer(Managed):
    """A tool run as a child process on a loopback port, its log in a private file: launch,
    wait until it answers, stop, and the log since the last start. Subclasses write `start`
    (the config and `launch` of their tool) and say how to ask whether it answers."""

    name = "server"  # in errors: "docker-registry", "prometheus"
    failure: type[RuntimeError] = RuntimeError
    start_timeout = 15.0
    stop_grace = 5.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after `stop_grace` seconds)."""
        process, self._process = self._process, None
        stop_process(process, self.stop_grace)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the child logged since it was last started."""
        return log_tail(self.log_path, self._log_offset, lines)

    def launch(self, argv: list[str], answers: Callable[[], str | None], where: str,
               timeout: float | None = None) -> None:
        """Start `argv` (log appended to `log_path`) and wait until `answers()` says None
        (it answers) rather than why not; stopped again, with the log tail in the error, when
        it exits or does not answer in time."""
        with private_log(self.log_path) as log:
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True)
        try:
            self.wait_until_answering(answers, where, timeout)
        except BaseException:
            self.stop()
            raise

    def wait_until_answering(self, answers: Callable[[], str | None], where: str,
                             timeout: float | None = None) -> None:
        """Ask `answers()` until it says None; `failure` when the child exits or time is up."""
        limit = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = None if self._process is None else self._process.poll()
            if self._process is None or code is not None:
                raise self.failure(
                    f"{self.name} exited with code {code} before serving on {where}"
                    f" (data in {self.data_dir}); log tail:\n{self.log_tail()}")
            problem = answers()
            if problem is None:
                return
            last_error = problem
            time.sleep(0.05)
        raise self.failure(f"{self.name} did not answer {where} within {limit:g} s"
                           f" ({last_error}); log tail:\n{self.log_tail()}")
