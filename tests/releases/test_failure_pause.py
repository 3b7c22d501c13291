"""A failed deployment that waits for a person (`rollback.pauseForHuman`), end to end.

On the real app in devhost with a virtual clock: production crashes, the release waits
with the failed version still running (and the approvers told), and then a person rolls it
back or keeps it through `POST /api/releases/{id}/resolve`, or nobody does and the deadline
applies `onFailure`. Also what the endpoint refuses, with nothing changed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from release_rig import SERVICE, Released, ReleaseStack, outcome

PAUSING = "        rollback: {onFailure: environment, pauseForHuman: true, pauseDeadline: 2h}\n"
ONCALL = "oncall@example.com"


def paused(status: dict[str, Any]) -> bool:
    waiting = (status.get("customStatus") or {}).get("waitingFor") or {}
    return waiting.get("kind") == "failure"


async def resolve(run: Released, release: str, body: Any) -> tuple[int, Any]:
    url = f"{run.host.base_url}/api/releases/{release}/resolve"
    async with aiohttp.ClientSession() as http, http.post(
            url, json=body, headers={"X-MS-CLIENT-PRINCIPAL-NAME": ONCALL}) as response:
        return response.status, await response.json(content_type=None)


async def ledger_row(stack: ReleaseStack, release: str, wanted: Any) -> Any:
    """The release's ledger row once `wanted(row)` (its activity writes it after the step)."""
    for _ in range(200):
        row = stack.ledger.get_release(release, service=SERVICE)
        if row is not None and wanted(row):
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"{release}: ledger row never as wanted: {row}")


async def told(stack: ReleaseStack, headline: str) -> dict[str, Any]:
    """The first Teams card whose title starts with `headline` (posted by an activity)."""
    for _ in range(200):
        for card in stack.teams.cards():
            if card["body"][0]["text"].startswith(headline):
                return card
        await asyncio.sleep(0.02)
    titles = [c["body"][0]["text"] for c in stack.teams.cards()]
    raise AssertionError(f"no card {headline!r}: {titles}")


async def crash_in_prod(stack: ReleaseStack, run: Released) -> tuple[str, str, str, dict]:
    """v1 completes; v2 crashes in prod and waits: (good digest, bad digest, v2, status)."""
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")
    stack.kube.set_image_behaviour(f"prod/{stack.repository}@{bad}", "crash")
    await run.completed("v1.0.0", good)
    second = run.start("v2.0.0", bad)
    await run.at_gate(second)
    run.approve(second)
    return good, bad, second, await run.until(second, paused)


def test_a_person_rolls_back_a_paused_production_failure(stack: ReleaseStack) -> None:
    stack.policy(checks=[], prod_extra=PAUSING)
    stack.monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")  # so the operator's sign-in counts

    async def scenario(run: Released) -> None:
        good, bad, release, status = await crash_in_prod(stack, run)
        waiting = status["customStatus"]["waitingFor"]
        assert waiting["environment"] == "prod" and waiting["onDeadline"] == "rollback"
        assert "CrashLoopBackOff" in waiting["failure"]
        opened = datetime.fromisoformat(status["customStatus"]["history"][-1]["at"])
        assert datetime.fromisoformat(waiting["deadline"]) - opened == timedelta(hours=2)
        assert stack.image("prod") == stack.image_in("prod", bad)  # nothing restored yet
        row = await ledger_row(stack, release, lambda r: r.step == "paused")
        assert (row.state, row.stages["prod"].state) == ("Running", "Deploying")
        card = (await told(stack, "Deployment failed"))["body"]
        assert card[0]["text"] == f"Deployment failed: {SERVICE} v2.0.0 in prod"
        assert "without a decision it is rolled back" in card[2]["text"]

        code, body = await resolve(run, release, {"environment": "prod",
                                                  "decision": "rollback",
                                                  "reason": "bad build"})
        assert code == 202, body
        assert (body["decision"], body["by"]) == ("rollback", ONCALL)
        done = await run.finished(release)
        assert outcome(done) == "RolledBack", done
        assert f"rolled back by {ONCALL}: bad build" in done["output"]["reason"]
        assert stack.image("prod") == stack.image_in("prod", good)
        current = stack.ledger.environment_state(SERVICE, "prod").current
        assert current.digest == good
        steps = [h["step"] for h in done["customStatus"]["history"]]
        assert steps[-3:] == ["paused", "rolling back", "RolledBack"]
        run.assert_no_secrets_anywhere()

    stack.serve(scenario)


def test_a_person_keeps_a_paused_failure_in_place(stack: ReleaseStack) -> None:
    """Without App Service Authentication the sign-in header names nobody: anyone can send it."""
    stack.policy(checks=[], prod_extra=PAUSING)
    stack.monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)

    async def scenario(run: Released) -> None:
        good, bad, release, _ = await crash_in_prod(stack, run)
        code, body = await resolve(run, release, {"environment": "prod", "decision": "keep",
                                                  "reason": "investigating live"})
        assert code == 202, body
        assert body["by"] == "anonymous"
        done = await run.finished(release)
        assert outcome(done) == "Failed", done
        assert "kept in place by anonymous: investigating live" in done["output"]["reason"]
        assert stack.image("prod") == stack.image_in("prod", bad)
        state = stack.ledger.environment_state(SERVICE, "prod")
        assert state.current.release_id == release  # what runs there, so it can be rolled back
        assert state.last_good.digest == good

    stack.serve(scenario)


def test_without_a_decision_the_deadline_rolls_back(stack: ReleaseStack) -> None:
    stack.policy(checks=[], prod_extra=PAUSING)

    async def scenario(run: Released) -> None:
        good, _, release, status = await crash_in_prod(stack, run)
        deadline = datetime.fromisoformat(status["customStatus"]["waitingFor"]["deadline"])
        await run.advance_to(deadline + timedelta(seconds=1))
        done = await run.finished(release)
        assert outcome(done) == "RolledBack", done
        assert f"rolled back: no decision by {deadline.isoformat()}" in done["output"]["reason"]
        assert stack.image("prod") == stack.image_in("prod", good)

    stack.serve(scenario)


def test_resolve_refuses_what_it_cannot_pass_on_and_changes_nothing(
        stack: ReleaseStack) -> None:
    stack.policy(checks=[], prod_extra=PAUSING)

    async def scenario(run: Released) -> None:
        digest = stack.push("v3.0.0")
        release = run.start("v3.0.0", digest)
        await run.at_gate(release)
        rollback = {"environment": "prod", "decision": "rollback", "reason": "r"}
        code, body = await resolve(run, release, rollback)
        assert code == 409
        assert body["error"] == (f"{release} is not waiting for a rollback-or-keep decision "
                                 "in prod (it is at step 'approval'); nothing was changed")
        code, body = await resolve(run, release, {**rollback, "decision": "retry"})
        assert (code, body["error"]) == (400, "decision must be one of rollback, keep, not "
                                              "'retry'")
        code, body = await resolve(run, release, {"environment": "prod", "decision": "keep"})
        assert code == 400 and "reason is required" in body["error"]
        code, body = await resolve(run, f"{SERVICE}-0000000000000000", rollback)
        assert (code, body["error"]) == (404, f"no release '{SERVICE}-0000000000000000'")
        assert run.status(release)["customStatus"]["waitingFor"]["kind"] == "approval"
        assert outcome(run.status(release)) is None

    stack.serve(scenario)
