"""Serve the real app through devhost in-process, on a free port, for one scenario."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent

T = TypeVar("T")


async def with_host(data_dir: Path, scenario: Callable[[str], Awaitable[T]]) -> T:
    """Start devhost on this repo, run `scenario(base_url)`, always stop the host."""
    from devhost.host import Host

    host = Host(app_dir=REPO, port=0, data_dir=data_dir)
    await host.start()
    try:
        return await scenario(host.base_url.rstrip("/"))
    finally:
        await host.stop()
