"""Fixtures for devhost's own tests: the sample apps and an in-process Host runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devhost.durable.clock import Clock
from devhost.host import Host

APPS = Path(__file__).parent / "apps"

Scenario = Callable[[Host, aiohttp.ClientSession], Awaitable[Any]]


@pytest.fixture
def apps() -> Path:
    """The directory of sample apps."""
    return APPS


@pytest.fixture
def serve(tmp_path: Path) -> Callable[..., Any]:
    """`serve(app, scenario, clock=None)`: run `scenario(host, session)` against a live Host.

    `app` is a sample app name or a directory; the session's base URL is the host's.
    """

    def run(app: str | Path, scenario: Scenario, clock: Clock | None = None) -> Any:
        app_dir = APPS / app if isinstance(app, str) else app

        async def main() -> Any:
            host = Host(app_dir, port=0, data_dir=tmp_path / "data", clock=clock)
            await host.start()
            try:
                async with aiohttp.ClientSession(base_url=host.base_url) as session:
                    return await scenario(host, session)
            finally:
                await host.stop()

        return asyncio.run(main())

    return run
