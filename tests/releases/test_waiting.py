"""`waitingFor`: what the orchestrator writes keeps its keys and their order; what readers
take back tolerates statuses written by earlier code and values of the wrong type."""

from __future__ import annotations

import json

import pytest

from shared.releases.waiting import (
    ApprovalWait,
    CountedApproval,
    FailureWait,
    GateLink,
    TurnWait,
    waiting_from_dict,
)

DEADLINE = "2027-01-15T10:00:00+00:00"
APPROVAL = {"kind": "approval", "environment": "prod", "event": "approval:prod:2",
            "deadline": DEADLINE, "requiredApprovals": 2,
            "approvals": [{"by": "ann@example.com", "at": "2027-01-15T08:00:00+00:00"}],
            "reminders": 1, "approvalPage": "https://app.example/api/approvals/x",
            "approvalLinks": [{"approver": "bob@example.com", "url": "https://app.example/a"}]}
FAILURE = {"kind": "failure", "environment": "qa", "event": "failure:qa:1", "deadline": DEADLINE,
           "failure": "rollout failed: CrashLoopBackOff", "onDeadline": "rollback"}
TURN = {"kind": "turn", "behind": "delivery-1", "until": DEADLINE}


@pytest.mark.parametrize("written", [APPROVAL, FAILURE, TURN], ids=lambda w: w["kind"])
def test_each_wait_reads_back_and_writes_the_same_json(written: dict) -> None:
    wait = waiting_from_dict(written)
    assert wait is not None and wait.kind == written["kind"]
    assert json.dumps(wait.to_dict()) == json.dumps(written)  # same keys, same order


def test_typed_fields() -> None:
    approval = waiting_from_dict(APPROVAL)
    assert isinstance(approval, ApprovalWait)
    assert (approval.required_approvals, approval.reminders) == (2, 1)
    assert [a["by"] for a in approval.approvals] == ["ann@example.com"]
    failure = waiting_from_dict(FAILURE)
    assert isinstance(failure, FailureWait) and failure.on_deadline == "rollback"
    assert failure.event == "failure:qa:1"
    assert waiting_from_dict(TURN) == TurnWait("delivery-1", DEADLINE)


def test_statuses_of_earlier_code_and_odd_values() -> None:
    early = waiting_from_dict({"environment": "prod", "event": "approval:prod:1"})  # no kind
    assert early == ApprovalWait("prod", "approval:prod:1", None)
    odd = waiting_from_dict({**APPROVAL, "reminders": True, "requiredApprovals": -1,
                             "approvals": "ann", "approvalLinks": [3, {"url": "x"}],
                             "approvalPage": 7})
    assert isinstance(odd, ApprovalWait)
    assert (odd.reminders, odd.required_approvals, odd.approvals) == (None, None, ())
    assert odd.approval_links == ({"url": "x"},) and odd.approval_page is None
    for nothing in (None, {}, [], "approval", {"kind": "lunch"}):
        assert waiting_from_dict(nothing) is None


def test_approvals_and_links_read_as_typed_entries() -> None:
    approval = waiting_from_dict(APPROVAL)
    assert isinstance(approval, ApprovalWait)
    assert approval.counted == (CountedApproval("ann@example.com", "2027-01-15T08:00:00+00:00"),)
    assert approval.links == (GateLink("bob@example.com", "https://app.example/a"),)
    odd = waiting_from_dict({**APPROVAL, "approvals": [{"by": 5}, {}],
                             "approvalLinks": [{"url": ["x"], "approver": "ann"}]})
    assert isinstance(odd, ApprovalWait)
    assert odd.counted == (CountedApproval(None, None), CountedApproval(None, None))
    assert odd.links == (GateLink("ann", None),)
    assert json.dumps(odd.to_dict()["approvalLinks"]) == '[{"url": ["x"], "approver": "ann"}]'
