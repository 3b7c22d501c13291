"""A release recorded by the code of an earlier deployment replays under today's code.

`recorded/release_7821493.py` is `orchestrations/release.py` as of commit 7821493, before a
release checked its approval settings before its first environment. The app runs with it in
devhost (SQLite task hub) and takes a release, started with that time's input (no
`preflight`), through QA to the production gate; the host stops ("the redeployment"), and a
host with today's code on the same task hub takes the approval and finishes the release.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from release_rig import REPO, Released, ReleaseStack, outcome, virtual_start

import orchestrations
import orchestrations.operations  # noqa: F401 (imported with today's release module first)
import orchestrations.release
from devhost.durable.clock import VirtualClock
from devhost.host import Host

RECORDED = Path(__file__).parent / "recorded" / "release_7821493.py"


def recorded_orchestrator() -> ModuleType:
    """The release orchestrator as commit 7821493 had it, as its own module."""
    spec = importlib.util.spec_from_file_location("recorded_release_7821493", RECORDED)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def old_input(stack: ReleaseStack, tag: str, digest: str, clock: VirtualClock) -> tuple[str, str]:
    """(release id, input) as ingestion wrote them before `preflight` existed."""
    release, payload = stack.release_request(tag, digest, clock.now())
    data = json.loads(payload)
    assert data.pop("preflight") == ["approvalSettings"]
    return release, json.dumps(data)


def scheduled(run: Released, release: str) -> list[str]:
    return [e["Name"] for e in run.history(release) if e["EventType"] == "TaskScheduled"]


def test_a_release_waiting_at_its_gate_finishes_after_the_new_code_is_deployed(
        stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")
    data_dir = stack.tmp_path / "devhost"

    async def main() -> None:
        clock = VirtualClock(virtual_start())
        with pytest.MonkeyPatch.context() as old_code:
            old = recorded_orchestrator()
            old_code.setitem(sys.modules, "orchestrations.release", old)
            old_code.setattr(orchestrations, "release", old)
            host = Host(REPO, port=0, data_dir=data_dir, clock=clock)
            await host.start()
            try:
                run = Released(stack, host, clock)
                assert run.engine.orchestrators["release"] is not None
                release, payload = old_input(stack, "v1.0.0", digest, clock)
                run.engine.start_new("release", release, payload)
                waiting = await run.at_gate(release)
                recorded = scheduled(run, release)
            finally:
                await host.stop()
        assert waiting["customStatus"]["waitingFor"]["event"] == "approval:prod:1"
        assert recorded[:1] == ["claim_stage"] and "request_approval" in recorded
        assert stack.image("qa") == stack.image_in("qa", digest)

        # Redeployed: today's code on the same task hub, a minute later.
        clock = VirtualClock(max(clock.now(), virtual_start()))
        host = Host(REPO, port=0, data_dir=data_dir, clock=clock)
        await host.start()
        try:
            run = Released(stack, host, clock)
            assert run.status(release)["runtimeStatus"] == "Running"
            run.approve(release)
            done = await run.finished(release)
            assert done["runtimeStatus"] == "Completed", done["output"]  # no NonDeterminismError
            assert outcome(done) == "Completed", done
            names = scheduled(run, release)
            assert names[:len(recorded)] == recorded  # the recorded part, replayed as it was
            assert "check_approval_settings" not in names
            assert stack.image("prod") == stack.image_in("prod", digest)
            # A release started now runs the check first.
            fresh = run.start("v1.0.1", stack.push("v1.0.1"))
            await run.at_gate(fresh)
            assert scheduled(run, fresh)[0] == "check_approval_settings"
            run.assert_no_secrets_anywhere()
        finally:
            await host.stop()

    try:
        asyncio.run(main())
    finally:
        stack.teams.stop()
