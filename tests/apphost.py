"""Serve the real app through devhost in-process, on a free port, for one scenario."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

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


def run_activities(data_dir: Path, *calls: tuple[str, Any]) -> list[Any]:
    """Start the app in devhost and run each (activity, input) in turn; a failing activity's
    exception (what the engine would see) takes its place in the answers."""
    from devhost.host import Host

    async def main() -> list[Any]:
        host = Host(REPO, port=0, data_dir=data_dir)
        await host.start()
        try:
            assert host.invoker is not None
            results: list[Any] = []
            for name, request in calls:
                try:
                    results.append(json.loads(
                        await host.invoker.run_activity(name, json.dumps(request))))
                except Exception as failure:
                    results.append(failure)
            return results
        finally:
            await host.stop()

    return asyncio.run(main())
