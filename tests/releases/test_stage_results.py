"""`StageResult` and `Outcome`: the JSON earlier code wrote reads back, and is written again
with the same keys."""

from __future__ import annotations

import json

import pytest

from shared.releases.outcomes import APPROVED, GateDecision, Outcome, StageResult

SNAPSHOT = {"image": "acr.io/x@sha256:" + "1" * 64, "revision": 3}
# What deploy_environment returned before the type existed (one per branch), and what the
# release made of them; histories recorded then hold these as sub-orchestration results.
OLD_RESULTS = [
    {"healthy": True, "snapshot": SNAPSHOT, "evidence": "rollout complete: all replicas ready"},
    {"healthy": False, "rolledBack": False, "paused": True, "reason": "rollout failed: Crash",
     "snapshot": SNAPSHOT},
    {"healthy": False, "rolledBack": False, "reason": "rollout failed: Crash",
     "snapshot": SNAPSHOT},
    {"healthy": False, "rolledBack": True, "snapshot": SNAPSHOT, "reason": "verification failed"},
    {"healthy": False, "outcome": "Superseded", "reason": "superseded by v2"},
    {"healthy": False, "outcome": "Failed", "reason": "registry r: not found"},
]


@pytest.mark.parametrize("old", OLD_RESULTS)
def test_old_results_read_back_and_write_the_same_keys_and_values(old: dict) -> None:
    result = StageResult.from_dict(old)
    assert result.to_dict() == old
    assert json.loads(json.dumps(result.to_dict())) == old


def test_what_the_release_reads_from_a_result() -> None:
    paused, refused = StageResult.from_dict(OLD_RESULTS[1]), StageResult.from_dict(OLD_RESULTS[4])
    assert paused.paused and paused.failed_deploying and paused.snapshot == SNAPSHOT
    assert not refused.failed_deploying and refused.outcome is Outcome.SUPERSEDED
    healthy = StageResult.from_dict(OLD_RESULTS[0])
    assert healthy.healthy and not healthy.failed_deploying
    assert healthy.evidence == "rollout complete: all replicas ready"


def test_a_settled_pause_keeps_its_flags() -> None:
    kept = StageResult(False, "failed; kept by ann", SNAPSHOT, rolled_back=False, kept=True,
                       outcome=Outcome.FAILED)
    assert kept.to_dict() == {"healthy": False, "rolledBack": False, "kept": True,
                              "reason": "failed; kept by ann", "snapshot": SNAPSHOT,
                              "outcome": "Failed"}
    assert StageResult.from_dict(kept.to_dict()) == kept


def test_outcomes_are_spelled_as_the_ledger_and_custom_status_spell_them() -> None:
    assert [o.value for o in Outcome] == [
        "Completed", "Failed", "RolledBack", "Rejected", "Expired", "Superseded"]
    assert json.dumps({"outcome": Outcome.ROLLED_BACK}) == '{"outcome": "RolledBack"}'
    with pytest.raises(ValueError):
        Outcome("rolledback")


def test_a_gate_decision_says_whether_the_release_goes_on_and_how_it_ended_if_not() -> None:
    approved = GateDecision(APPROVED, "approved by ann@example.com", {"kind": "outcome"})
    assert approved.approved and approved.card == {"kind": "outcome"}
    rejected = GateDecision("Rejected", "rejected by bob@example.com")
    assert not rejected.approved and rejected.ended is Outcome.REJECTED and rejected.card == {}
    with pytest.raises(ValueError):
        _ = approved.ended  # an approval is no outcome of the release
