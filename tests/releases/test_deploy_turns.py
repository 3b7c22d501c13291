"""Whose turn it is to deploy: a release waits for an earlier claim on its environment (another
release or a manual operation), is woken as soon as that stage ends (the 30 s poll only
when nobody wakes it), and is not deployed over a newer version, on the real app.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import aiohttp
from release_rig import SERVICE, Released, ReleaseStack, fake_digest, outcome

from shared.ledger.records import ReleaseRecord, StageState
from shared.ledger.turns import TurnWaiters


def operation_row(stack: ReleaseStack, state: str, at: datetime) -> ReleaseRecord:
    return ReleaseRecord(release_id=f"rollback:{SERVICE}:prod:1", service=SERVICE,
                         version="v0.9.0", digest=fake_digest("old"), state=state,
                         created_at=at, updated_at=at, environment="prod", step="rollback",
                         stages={"prod": StageState("Deploying", started=at)})


def waiting_for_turn(status: dict[str, Any]) -> bool:
    return ((status.get("customStatus") or {}).get("waitingFor") or {}).get("kind") == "turn"


async def until_deploying(stack: ReleaseStack, namespace: str, digest: str) -> None:
    """Until the simulator's Deployment names the image (its rollout may still go on)."""
    deadline = time.monotonic() + 20
    while stack.image(namespace) != stack.image_in(namespace, digest):
        assert time.monotonic() < deadline, f"{digest} never reached {namespace}"
        await asyncio.sleep(0.02)


def turn_steps(run: Released, instance_id: str) -> list[str]:
    """The instance's claims, fired timers and turn events, in history order."""
    steps = []
    for event in run.history(instance_id):
        kind, name = event["EventType"], event.get("Name") or ""
        if kind == "TaskScheduled" and name == "claim_stage":
            steps.append("claim")
        elif kind == "TimerFired":
            steps.append("timer")
        elif kind == "EventRaised" and name.startswith("turn:"):
            steps.append(f"event {name}")
    return steps


async def woken_when_the_rollout_ends(run: Released, waiter: str) -> None:
    """Let the frozen rollout in QA complete; the waiter reaches its gate while the virtual
    clock stands still, so no poll timer can have moved it."""
    stack, before = run.stack, run.clock.now()
    stack.kube.rollout_seconds = 0
    stack.kube.advance(61)
    await run.at_gate(waiter, step=0)
    assert run.clock.now() == before
    assert stack.writes("qa") == 2  # the holder's deploy, then the waiter's


def test_a_release_waiting_for_its_turn_deploys_as_soon_as_the_holder_s_stage_ends(
        stack: ReleaseStack) -> None:
    holder_digest, waiter_digest = stack.push("v1.0.0"), stack.push("v1.0.1")
    stack.kube.rollout_seconds = 60  # the simulator's clock is frozen: QA waits for advance()

    async def scenario(run: Released) -> None:
        holder = run.start("v1.0.0", holder_digest)
        await until_deploying(stack, "qa", holder_digest)
        waiter = run.start("v1.0.1", waiter_digest)
        status = await run.until(waiter, waiting_for_turn, step=0)
        assert status["customStatus"]["waitingFor"]["behind"] == holder
        waiting = TurnWaiters.beside(stack.ledger).waiting(SERVICE, "qa")
        assert [(w.release_id, w.event) for w in waiting] == [(waiter, "turn:qa:1")]

        await woken_when_the_rollout_ends(run, waiter)
        assert stack.image("qa") == stack.image_in("qa", waiter_digest)
        assert turn_steps(run, waiter) == ["claim", "event turn:qa:1", "claim"]
        assert TurnWaiters.beside(stack.ledger).waiting(SERVICE, "qa") == []
        assert run.status(holder)["customStatus"]["step"] == "approval"

    stack.serve(scenario)


def test_a_release_behind_a_redeploy_deploys_as_soon_as_the_redeploy_ends(
        stack: ReleaseStack) -> None:
    v1, v2, v3 = stack.push("v1.0.0"), stack.push("v2.0.0"), stack.push("v3.0.0")

    async def scenario(run: Released) -> None:
        first = await run.completed("v1.0.0", v1)
        await run.completed("v2.0.0", v2)
        stack.kube.rollout_seconds = 60  # the redeploy's rollout waits for advance()
        async with aiohttp.ClientSession() as http, http.post(
                f"{run.host.base_url}/api/releases/{first}/redeploy",
                json={"environment": "qa", "reason": "compare"}) as response:
            started = await response.json()
            assert response.status == 202, started
        await until_deploying(stack, "qa", v1)
        writes = stack.writes("qa")
        waiter = run.start("v3.0.0", v3)
        status = await run.until(waiter, waiting_for_turn, step=0)
        assert status["customStatus"]["waitingFor"]["behind"] == started["id"]

        before = run.clock.now()
        stack.kube.rollout_seconds = 0
        stack.kube.advance(61)
        await run.at_gate(waiter, step=0)
        assert run.clock.now() == before
        assert outcome(run.status(started["id"])) == "Completed"
        assert stack.writes("qa") == writes + 1
        assert stack.image("qa") == stack.image_in("qa", v3)
        assert turn_steps(run, waiter) == ["claim", "event turn:qa:1", "claim"]

    stack.serve(scenario)


def test_a_holder_goes_on_when_a_registered_waiter_is_gone(stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")
    waiters = TurnWaiters.beside(stack.ledger)

    async def scenario(run: Released) -> None:
        waiters.register(SERVICE, "qa", f"{SERVICE}-gone", "turn:qa:4", run.clock.now())
        release = run.start("v1.0.0", digest)
        await run.at_gate(release, step=0)  # QA ended healthy: its record woke (tried to)
        assert stack.image("qa") == stack.image_in("qa", digest)
        assert waiters.waiting(SERVICE, "qa") == []
        assert run.failed_tasks(release) == []

    stack.serve(scenario)


async def approved_behind_an_operation(run: Released,
                                       digest: str) -> tuple[str, dict[str, Any]]:
    """A manual rollback deploying prod (its ledger row), then v1.0.0 started and approved;
    (release id, its status once it waits for prod's turn)."""
    run.stack.ledger.upsert_release(operation_row(run.stack, "Running", run.clock.now()))
    release = run.start("v1.0.0", digest)
    await run.at_gate(release)
    run.approve(release)
    status = await run.until(release, lambda s: (s["customStatus"]["waitingFor"] or {})
                             .get("kind") == "turn", step=0)
    return release, status


def test_a_release_waits_while_a_manual_operation_deploys_there(stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release, status = await approved_behind_an_operation(run, digest)
        assert status["customStatus"]["waitingFor"]["behind"] == f"rollback:{SERVICE}:prod:1"
        assert stack.writes("prod") == 0
        # This operation ends without waking anyone: the release finds out at its next poll.
        stack.ledger.upsert_release(operation_row(stack, "Completed", run.clock.now()))
        await asyncio.sleep(0.5)
        assert stack.writes("prod") == 0
        run.clock.advance(31)
        done = await run.finished(release)
        assert outcome(done) == "Completed", done
        assert stack.image("prod") == stack.image_in("prod", digest)
        assert turn_steps(run, release)[-3:] == ["claim", "timer", "claim"]

    stack.serve(scenario)


def test_an_operation_that_never_ends_fails_the_release_without_touching_prod(
        stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release, _ = await approved_behind_an_operation(run, digest)
        done = await run.finished(release, step=60)
        assert done["output"]["outcome"] == "Failed"
        assert done["output"]["reason"].startswith(
            f"rollback:{SERVICE}:prod:1 was still deploying in prod at ")
        assert stack.writes("prod") == 0

    stack.serve(scenario)


def test_an_older_version_is_not_deployed_over_a_newer_one(stack: ReleaseStack) -> None:
    newer, older = fake_digest("v1.1.0"), fake_digest("v1.0.0")

    async def scenario(run: Released) -> None:
        first = run.start("v1.1.0", newer)
        await run.at_gate(first)
        assert stack.image("qa") == stack.image_in("qa", newer)
        late = run.start("v1.0.0", older)  # a slow pipeline pushes the older build last
        done = await run.finished(late)
        assert done["output"]["outcome"] == "Superseded"
        assert done["output"]["reason"] == ("superseded by v1.1.0, which already runs in qa;"
                                            " an older version is not deployed over it")
        assert stack.image("qa") == stack.image_in("qa", newer)
        assert stack.writes("qa") == 1

    stack.serve(scenario)


def test_two_releases_at_once_deploy_one_after_the_other_and_the_newer_stays(
        stack: ReleaseStack) -> None:
    newer, older = fake_digest("v2.1.0"), fake_digest("v2.0.0")

    async def scenario(run: Released) -> None:
        ids = [run.start("v2.1.0", newer), run.start("v2.0.0", older)]
        ends = await asyncio.gather(*(run.until(i, lambda s: s["runtimeStatus"] not in (
            "Pending", "Running") or (s["customStatus"] or {}).get("step") == "approval")
                                      for i in ids))
        assert stack.image("qa") == stack.image_in("qa", newer)
        steps = {i: e["customStatus"]["step"] for i, e in zip(ids, ends, strict=True)}
        assert steps[ids[0]] == "approval"  # the newer one waits at the gate
        # The older one either went first (and its gate is next) or found the newer in QA.
        assert steps[ids[1]] in ("approval", "Superseded")
        assert stack.writes("qa") == (2 if steps[ids[1]] == "approval" else 1)

    stack.serve(scenario)
