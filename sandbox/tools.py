"""Helpers the sandbox servers share: Debian tools, free ports, process and log handling,
private files and folders for what may hold a secret."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
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
