"""Whose turn it is to deploy: a release waits for an earlier claim on its environment (another
release or a manual operation), and is not deployed over a newer version, on the real app.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from release_rig import SERVICE, Released, ReleaseStack, fake_digest, outcome

from shared.ledger.records import ReleaseRecord, StageState


def operation_row(stack: ReleaseStack, state: str, at: datetime) -> ReleaseRecord:
    return ReleaseRecord(release_id=f"rollback:{SERVICE}:prod:1", service=SERVICE,
                         version="v0.9.0", digest=fake_digest("old"), state=state,
                         created_at=at, updated_at=at, environment="prod", step="rollback",
                         stages={"prod": StageState("Deploying", started=at)})


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
        stack.ledger.upsert_release(operation_row(stack, "Completed", run.clock.now()))
        run.clock.advance(31)
        done = await run.finished(release)
        assert outcome(done) == "Completed", done
        assert stack.image("prod") == stack.image_in("prod", digest)

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
