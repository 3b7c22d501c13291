"""Helpers the sandbox servers share: finding Debian tools and picking free loopback ports."""

from __future__ import annotations

import shutil
import socket


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
