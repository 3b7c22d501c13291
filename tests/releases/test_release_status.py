"""`ReleaseStatus`: the custom status reads back and is written again with the keys, order
and values earlier code wrote; odd or missing values read as missing."""

from __future__ import annotations

import json

import pytest

from shared.releases.outcomes import Outcome
from shared.releases.status import HistoryEntry, ReleaseStatus
from shared.releases.waiting import FailureWait

AT = "2027-01-15T08:00:00+00:00"
RUNNING = {  # as Journal wrote it at a paused QA deployment, a retried release
    "releaseId": "delivery-1a2b", "service": "delivery", "version": "v1.4.2",
    "digest": "sha256:" + "1" * 64, "pushedBy": "ci@example.com", "environment": "qa",
    "step": "paused",
    "waitingFor": {"kind": "failure", "environment": "qa", "event": "failure:qa:1",
                   "deadline": AT, "failure": "rollout failed: Crash", "onDeadline": "keep"},
    "evidence": {}, "history": [
        {"at": AT, "environment": None, "step": "retried", "detail": "retry 1 by ann"},
        {"at": AT, "environment": "qa", "step": "deploy"},
        {"at": AT, "environment": "qa", "step": "paused", "detail": "rollout failed: Crash"}],
    "overwrites": {"digest": "sha256:" + "2" * 64, "releaseId": "delivery-9f9f"}}
FINISHED = {  # an operation that ended
    "releaseId": "rollback:delivery:prod:1", "service": "delivery", "version": "v1.4.1",
    "digest": "sha256:" + "3" * 64, "pushedBy": None, "environment": "prod",
    "step": "Completed", "waitingFor": None,
    "evidence": {"qa": "rollout complete: all replicas ready"},
    "history": [{"at": AT, "environment": "prod", "step": "rollback"},
                {"at": AT, "environment": "prod", "step": "Completed"}],
    "operation": {"kind": "rollback", "environment": "prod", "by": "ann@example.com"},
    "outcome": "Completed", "reason": "rollback of prod to v1.4.1 by ann@example.com"}


@pytest.mark.parametrize("written", [RUNNING, FINISHED], ids=["running", "finished"])
def test_a_status_reads_back_and_writes_the_same_json(written: dict) -> None:
    status = ReleaseStatus.from_dict(written)
    assert json.dumps(status.to_dict()) == json.dumps(written)


def test_typed_fields() -> None:
    running, finished = ReleaseStatus.from_dict(RUNNING), ReleaseStatus.from_dict(FINISHED)
    assert isinstance(running.waiting_for, FailureWait) and not running.finished
    assert running.history[2] == HistoryEntry(AT, "qa", "paused", "rollout failed: Crash")
    assert finished.finished and finished.outcome is Outcome.COMPLETED
    assert finished.evidence == {"qa": "rollout complete: all replicas ready"}
    ended_without_reason = ReleaseStatus.from_dict({**FINISHED, "reason": None})
    assert ended_without_reason.to_dict()["reason"] is None


def test_a_status_of_earlier_code_or_of_nothing() -> None:
    assert ReleaseStatus.from_dict(None) == ReleaseStatus(None, None, None, None, step=None)
    odd = ReleaseStatus.from_dict({"pushedBy": 3, "evidence": ["qa"], "history": "x",
                                   "waitingFor": {"kind": "lunch"}, "outcome": "Lunch"})
    assert (odd.pushed_by, odd.evidence, odd.history, odd.waiting_for) == (None, {}, (), None)
    assert odd.finished and odd.outcome is None
