"""A release recorded by the code of an earlier deployment replays under today's code.

`recorded/release_7821493.py` is `orchestrations/release.py` as of commit 7821493, before a
release checked its approval settings before its first environment. The app runs with it in
devhost (SQLite task hub) and takes a release, started with that time's input (no
`preflight`), through QA to the production gate; the host stops ("the redeployment"), and a
host with today's code on the same task hub takes the approval and finishes the release.

`recorded/release_d9363e3.py` is the orchestrator as of commit d9363e3, whose releases waited
for a deploy turn on a timer alone: a release recorded waiting behind another one's QA
rollout goes on under today's code, which wakes it when that rollout ends.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from release_rig import REPO, SERVICE, Released, ReleaseStack, outcome, virtual_start

import orchestrations
import orchestrations.operations  # noqa: F401 (imported with today's release module first)
import orchestrations.release
from devhost.durable.clock import VirtualClock
from devhost.host import Host
from shared.ledger.turns import TurnWaiters

RECORDED = Path(__file__).parent / "recorded" / "release_7821493.py"
RECORDED_TURNS = Path(__file__).parent / "recorded" / "release_d9363e3.py"


def recorded_orchestrator(path: Path = RECORDED) -> ModuleType:
    """The release orchestrator as an earlier commit had it, as its own module."""
    spec = importlib.util.spec_from_file_location(f"recorded_{path.stem}", path)
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


def turn_steps(run: Released, release: str) -> list[str]:
    """Claims, fired timers and turn events of the release, in history order."""
    steps = []
    for event in run.history(release):
        kind, name = event["EventType"], event.get("Name") or ""
        if kind == "TaskScheduled" and name == "claim_stage":
            steps.append("claim")
        elif kind == "TimerFired":
            steps.append("timer")
        elif kind == "EventRaised" and name.startswith("turn:"):
            steps.append(f"event {name}")
    return steps


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


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


def test_a_release_waiting_for_its_turn_goes_on_after_the_new_code_is_deployed(
        stack: ReleaseStack) -> None:
    holder_digest, waiter_digest = stack.push("v1.0.0"), stack.push("v1.0.1")
    data_dir = stack.tmp_path / "devhost"
    waiters = TurnWaiters.beside(stack.ledger)
    stack.kube.rollout_seconds = 60  # the simulator's clock is frozen: QA waits for advance()

    async def main() -> None:
        clock = VirtualClock(virtual_start())
        with pytest.MonkeyPatch.context() as old_code:
            old = recorded_orchestrator(RECORDED_TURNS)
            old_code.setitem(sys.modules, "orchestrations.release", old)
            old_code.setattr(orchestrations, "release", old)
            host = Host(REPO, port=0, data_dir=data_dir, clock=clock)
            await host.start()
            try:
                run = Released(stack, host, clock)
                holder = run.start("v1.0.0", holder_digest)
                await until(lambda: stack.image("qa") == stack.image_in("qa", holder_digest),
                            "the holder deploys QA")
                waiter = run.start("v1.0.1", waiter_digest)
                status = await run.until(waiter, lambda s: ((s.get("customStatus") or {})
                                         .get("waitingFor") or {}).get("kind") == "turn", step=0)
                recorded = scheduled(run, waiter)
            finally:
                await host.stop()
        assert status["customStatus"]["waitingFor"]["behind"] == holder
        assert recorded == ["check_approval_settings", "claim_stage"]
        assert waiters.waiting(SERVICE, "qa") == []  # the old code waits on its timer alone

        # Redeployed while the holder's rollout goes on: today's code on the same task hub.
        clock = VirtualClock(max(clock.now(), virtual_start()))
        host = Host(REPO, port=0, data_dir=data_dir, clock=clock)
        await host.start()
        try:
            run = Released(stack, host, clock)
            assert run.status(waiter)["runtimeStatus"] == "Running"
            clock.advance(31)  # the recorded poll fires; today's claim finds QA still busy
            await until(lambda: bool(waiters.waiting(SERVICE, "qa")) or run.status(waiter)[
                "runtimeStatus"] != "Running", "the waiter registers, or ends")
            assert run.status(waiter)["runtimeStatus"] == "Running", run.status(waiter)["output"]
            assert [w.release_id for w in waiters.waiting(SERVICE, "qa")] == [waiter]
            before = clock.now()
            stack.kube.rollout_seconds = 0
            stack.kube.advance(61)  # the holder's rollout completes: the waiter is woken
            await run.at_gate(waiter, step=0)
            assert clock.now() == before
            assert stack.image("qa") == stack.image_in("qa", waiter_digest)
            assert turn_steps(run, waiter) == ["claim", "timer", "claim", "event turn:qa:2",
                                               "claim"]
            assert scheduled(run, waiter)[:len(recorded)] == recorded
            run.approve(waiter)
            done = await run.finished(waiter)
            assert done["runtimeStatus"] == "Completed", done["output"]  # no NonDeterminismError
            assert outcome(done) == "Completed", done
            assert stack.image("prod") == stack.image_in("prod", waiter_digest)
            assert run.status(holder)["customStatus"]["step"] == "approval"
            run.assert_no_secrets_anywhere()
        finally:
            await host.stop()

    try:
        asyncio.run(main())
    finally:
        stack.teams.stop()
