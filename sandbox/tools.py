"""Helpers the sandbox servers share: Debian tools, free ports, process and log handling."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self


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
        return self.start()  # type: ignore[attr-defined, no-any-return]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()  # type: ignore[attr-defined]
