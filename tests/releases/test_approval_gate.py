"""The approval gate on the real app in devhost: links, cards, checked decisions, counting.

Cards go to a local Teams sink; decisions are raised the way the approval page raises them
(the event name from the custom status), so each one passes `check_approval` and the
approval book in Azurite before it counts.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from release_rig import SERVICE, Released, ReleaseStack, fake_digest, outcome

ANN, BOB = "ann@example.com", "bob@example.com"
TWO_APPROVERS = ("{approvers: {users: [ann@example.com, bob@example.com]},"
                 " requiredApprovals: 2, deadline: 72h, reminderInterval: 24h,"
                 " escalation: {group: release-leads, afterReminders: 2},"
                 " teamsWebhookSecret: teams-webhook}")


def headlines(stack: ReleaseStack) -> list[str]:
    return [card["body"][0]["text"] for card in stack.teams.cards()]


def details(status: dict[str, Any]) -> list[str]:
    return [h.get("detail", "") for h in status["customStatus"]["history"]]


def test_two_approvers_with_reminders_escalation_and_a_replayed_link(
        stack: ReleaseStack) -> None:
    stack.policy(checks=[], gate=TWO_APPROVERS)
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        status = await run.at_gate(release, step=0)
        waiting = status["customStatus"]["waitingFor"]
        assert waiting["approvalPage"] is None and waiting["requiredApprovals"] == 2
        assert [link["approver"] for link in waiting["approvalLinks"]] == [ANN, BOB]
        assert all(link["url"].startswith(f"http://approvals.test/api/releases/{release}"
                                          "/approvals/prod?token=")
                   for link in waiting["approvalLinks"])
        (request,) = stack.teams.cards()
        assert request["body"][0]["text"] == f"Approval needed: {SERVICE} v1.0.0 to prod"
        assert [a["title"] for a in request["actions"]] == [f"Review as {ANN}",
                                                           f"Review as {BOB}"]
        assert [a["url"] for a in request["actions"]] == \
            [link["url"] for link in waiting["approvalLinks"]]

        deadline = datetime.fromisoformat(waiting["deadline"])
        opened = deadline - timedelta(hours=72)
        for hours, count in ((24, 1), (48, 2)):
            await run.advance_to(opened + timedelta(hours=hours))
            await run.until(release, lambda s, n=count: s["customStatus"]["waitingFor"]
                            ["reminders"] == n, step=0)
        reminders = stack.teams.cards()[1:]
        assert [c["body"][0]["text"].split(":")[0] for c in reminders] == \
            ["Reminder 1 of 2", "Reminder 2 of 2"]
        assert "release-leads" not in str(reminders[0])
        assert "Escalated to release-leads" in str(reminders[1])

        first = run.approve(release, by=ANN)
        status = await run.until(release, lambda s: s["customStatus"]["waitingFor"]["event"]
                                 == "approval:prod:2", step=0)
        assert [a["by"] for a in status["customStatus"]["waitingFor"]["approvals"]] == [ANN]
        assert details(status)[-1] == f"approved by {ANN}; more approvals needed"

        run.approve(release, by=ANN, nonce=first["nonce"])  # the same link again
        status = await run.until(release, lambda s: s["customStatus"]["waitingFor"]["event"]
                                 == "approval:prod:3", step=0)
        assert details(status)[-1].startswith(f"not counted: already decided by {ANN} at ")

        run.approve(release, by=BOB, comment="both of us")
        done = await run.finished(release)
        assert outcome(done) == "Completed", done
        assert f"approved by {ANN}, {BOB}: both of us" in details(done)
        assert stack.image("prod") == stack.image_in("prod", digest)
        assert headlines(stack)[-1] == f"{SERVICE} v1.0.0 to prod"
        assert stack.teams.cards()[-1]["body"][1]["text"] == f"Approved by {BOB}: both of us"

    stack.serve(scenario)


def test_the_pusher_and_strangers_do_not_count_and_a_reject_ends_it(
        stack: ReleaseStack) -> None:
    stack.policy(checks=[], gate=TWO_APPROVERS.replace("requiredApprovals: 2",
                                                      "requiredApprovals: 1"))
    digest = fake_digest("separation")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest, pushed_by=ANN)
        status = await run.at_gate(release)
        assert status["customStatus"]["pushedBy"] == ANN
        run.approve(release, by=ANN)
        await run.until(release, lambda s: "approval:prod:2" ==
                        s["customStatus"]["waitingFor"]["event"])
        run.approve(release, by="eve@example.com")
        status = await run.until(release, lambda s: "approval:prod:3" ==
                                 s["customStatus"]["waitingFor"]["event"])
        assert details(status)[-2].startswith(f"not counted: {ANN} pushed the image")
        assert details(status)[-1] == "not counted: eve@example.com is not an approver of prod"
        assert status["customStatus"]["waitingFor"]["approvals"] == []

        run.approve(release, by=BOB, approved=False, comment="not this week")
        done = await run.finished(release)
        assert done["output"]["outcome"] == "Rejected"
        assert done["output"]["reason"] == f"rejected by {BOB}: not this week"
        assert stack.writes("prod") == 0
        assert stack.teams.cards()[-1]["body"][1]["text"] == f"Rejected by {BOB}: not this week"

    stack.serve(scenario)


def test_a_teams_outage_is_recorded_and_the_release_goes_on(stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")
    stack.teams.fail_next(1, status=404)

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        status = await run.at_gate(release)
        note = details(status)[-1]
        assert note.startswith("Teams card not posted: Teams webhook from secret"), note
        assert "answered 404" in note
        run.approve(release)
        done = await run.finished(release)
        assert outcome(done) == "Completed", done

    stack.serve(scenario)


def test_without_a_signing_key_the_release_fails_before_deploying_anything(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPROVAL_SIGNING_KEY")
    digest = fake_digest("no-key")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        done = await run.finished(release)
        assert done["output"]["outcome"] == "Failed"
        assert done["output"]["environment"] is None
        assert done["output"]["reason"].startswith(
            "nothing deployed: the approval gates of this release cannot work:"
            " APPROVAL_SIGNING_KEY is not set")
        assert stack.writes("qa") == 0 and stack.writes("prod") == 0
        assert run.failed_tasks(release) == []  # a settings problem is an answer, not a crash
        row = stack.ledger.get_release(release, service=SERVICE)
        assert (row.state, row.stages) == ("Failed", {})
        assert "APPROVAL_SIGNING_KEY is not set" in row.reason

    stack.serve(scenario)


def test_a_gate_of_groups_only_cannot_open_with_links_that_name_people(
        stack: ReleaseStack) -> None:
    stack.policy(checks=[], gate="{approvers: {groups: [release-managers]}, deadline: 72h}")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", fake_digest("groups-only"))
        done = await run.finished(release)
        assert outcome(done) == "Failed", done
        assert f"the gate of {SERVICE}/prod names only groups" in done["output"]["reason"]
        assert stack.writes("qa") == 0

    stack.serve(scenario)


def test_a_release_started_before_the_check_existed_still_fails_at_the_gate(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its input names no preflight check: the gate's own refusal remains the safety net."""
    monkeypatch.delenv("APPROVAL_SIGNING_KEY")
    digest = fake_digest("no-key-old-input")

    async def scenario(run: Released) -> None:
        release, payload = stack.release_request("v1.0.0", digest, run.clock.now())
        data = json.loads(payload)
        del data["preflight"]
        run.engine.start_new("release", release, json.dumps(data))
        done = await run.finished(release)
        assert done["output"]["outcome"] == "Failed"
        assert "APPROVAL_SIGNING_KEY is not set" in done["output"]["reason"]
        assert done["output"]["environment"] == "prod" and stack.writes("prod") == 0
        assert len(run.failed_tasks(release)) == 1  # a settings error is not retried

    stack.serve(scenario)
