"""The smoke orchestration end to end through devhost: HTTP starter, engine, status API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from orchestrations.hello_sequence import DEFAULT_NAMES
from tests.apphost import with_host

DEADLINE_SECONDS = 30


async def start_and_wait(base_url: str) -> tuple[dict, list[tuple[int, str]]]:
    """Start hello_sequence, poll its status until it finishes; also try two bad requests."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/api/orchestrators/hello_sequence") as response:
            assert response.status == 202, await response.text()
            links = await response.json()
        status: dict = {}
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            async with session.get(links["statusQueryGetUri"]) as response:
                status = await response.json()
            if status.get("runtimeStatus") in {"Completed", "Failed", "Terminated"}:
                break
            await asyncio.sleep(0.1)
        refusals = []
        for path, body in (("nope", b"{}"), ("hello_sequence", b"{not json")):
            async with session.post(f"{base_url}/api/orchestrators/{path}", data=body) as response:
                refusals.append((response.status, (await response.json())["error"]))
        return status, refusals


def test_hello_sequence_completes_and_bad_requests_are_refused(data_dir: Path) -> None:
    status, refusals = asyncio.run(with_host(data_dir, start_and_wait))

    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == [f"Hello {name}!" for name in DEFAULT_NAMES]
    assert [code for code, _ in refusals] == [404, 400]
    assert all(reason and "\n" not in reason for _, reason in refusals)
