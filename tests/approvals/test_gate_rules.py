"""The pure rules of an approval gate: event names, reminders, escalation, judging, counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.approvals.gate import Tally, decided_by, decision_event, judge
from shared.ledger.approvals import ApprovalUse
from shared.policy import Gate

OPENED = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
SPEC = {"approvers": {"users": ["ann@example.com", "bob@example.com"], "groups": ["ops"]},
        "requiredApprovals": 2, "deadlineSeconds": 72 * 3600,
        "reminderIntervalSeconds": 24 * 3600,
        "escalation": {"group": "leads", "afterReminders": 2},
        "teamsWebhookSecret": "teams-webhook"}


def verdict(by: str, decision: str = "approve", counted: bool = True,
            comment: str | None = None) -> dict:
    return {"counted": counted, "decision": decision, "by": by, "identity": by.casefold(),
            "at": OPENED.isoformat(), "comment": comment}


def test_each_decision_wait_has_its_own_event_name() -> None:
    assert decision_event("prod", 1) == "approval:prod:1"
    assert decision_event("prod", 2) != decision_event("prod", 1)


def test_rules_from_the_plan_gate() -> None:
    rules = Gate.from_dict(SPEC)
    assert rules.users == ("ann@example.com", "bob@example.com")
    assert (rules.required_approvals, rules.deadline, rules.reminders_before_deadline) == (
        2, timedelta(hours=72), 2)
    assert rules.teams_webhook_secret == "teams-webhook"
    bare = Gate.from_dict({"deadlineSeconds": 3600})
    assert (bare.required_approvals, bare.reminders_before_deadline,
            bare.escalated_to(5)) == (1, 0, None)


@pytest.mark.parametrize(("sent", "wake"), [(0, 24), (1, 48), (2, 72), (3, 72)])
def test_wakes_at_each_reminder_counted_from_the_opening_then_the_deadline(sent: int,
                                                                            wake: int) -> None:
    assert Gate.from_dict(SPEC).next_wake(OPENED, sent) == OPENED + timedelta(hours=wake)


def test_an_interval_that_divides_the_deadline_sends_no_reminder_at_the_deadline() -> None:
    rules = Gate.from_dict({**SPEC, "deadlineSeconds": 48 * 3600})
    assert rules.reminders_before_deadline == 1
    assert rules.next_wake(OPENED, 1) == OPENED + timedelta(hours=48)


def test_escalation_joins_from_the_configured_reminder_on() -> None:
    rules = Gate.from_dict(SPEC)
    assert [rules.escalated_to(n) for n in (1, 2, 3)] == [None, "leads", "leads"]


@pytest.mark.parametrize(("decision", "pusher", "allowed", "why"), [
    ({"approver": "Ann", "identities": ["ann@example.com"]}, None, True, "is an approver"),
    ({"approver": "Carl", "identities": ["carl@example.com"], "groups": ["OPS"]}, None, True,
     "member of group ops"),
    ({"approver": "Carl", "identities": ["carl@example.com"]}, None, False,
     "is not an approver of prod"),
    ({"approver": "Ann", "identities": ["ann@example.com"]}, "ANN@example.com", False,
     "pushed the image"),
    ({"approver": "", "identities": []}, None, False, "names no approver"),
])
def test_judge_applies_the_allow_list_and_separation_of_duties(
        decision: dict, pusher: str | None, allowed: bool, why: str) -> None:
    ok, reason = judge(Gate.from_dict(SPEC), decision, pusher, "prod")
    assert ok is allowed and why in reason


def test_tally_needs_distinct_people_and_ignores_uncounted_and_repeats() -> None:
    tally = Tally(required=2)
    tally.add(verdict("ann@example.com"))
    tally.add(verdict("ANN@example.com"))  # the same person again
    tally.add(verdict("eve@example.com", counted=False))
    assert tally.outcome is None and [a["by"] for a in tally.summary()] == ["ann@example.com"]
    tally.add(verdict("bob@example.com", comment="looks good"))
    assert tally.outcome == "Approved"
    assert tally.reason == "approved by ann@example.com, bob@example.com: looks good"
    tally.add(verdict("carl@example.com", decision="reject"))  # settled: nothing changes
    assert tally.outcome == "Approved"


def test_one_counted_reject_settles_the_gate() -> None:
    tally = Tally(required=2)
    tally.add(verdict("ann@example.com"))
    tally.add(verdict("bob@example.com", decision="reject", comment="not this week"))
    assert (tally.outcome, tally.reason) == ("Rejected",
                                             "rejected by bob@example.com: not this week")


def test_decided_by_names_the_first_counted_use() -> None:
    refused = ApprovalUse("n:eve", "e1", "approve", "eve", OPENED, counted=False)
    counted = ApprovalUse("n:ann", "e2", "reject", "ann", OPENED + timedelta(minutes=1),
                          counted=True)
    assert decided_by([refused]) is None
    assert decided_by([refused, counted]) == \
        f"rejected by ann at {(OPENED + timedelta(minutes=1)).isoformat()}"
