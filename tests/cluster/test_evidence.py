"""`Evidence`: round-trips through JSON; HTTP checks' evidence reads as the status always said."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.cluster.verification import (
    Attempt,
    Verdict,
    check_results,
    evidence_from_results,
    evidence_of,
)
from shared.deploy.evidence import Evidence, Measurement
from shared.deploy.evidence import Verdict as Concluded

PASSING = {"passed": True, "verdicts": [
    {"check": "health", "passed": True, "reason": "status 200 as expected",
     "attempts": [{"ok": True, "reason": "status 200 as expected", "status": 200,
                   "latency_ms": 3.2, "excerpt": "ok"}]},
    {"check": "version", "passed": True, "reason": "status 200 as expected", "attempts": []}]}
FAILING = {"passed": False, "verdicts": [
    PASSING["verdicts"][0],
    {"check": "version", "passed": False,
     "reason": "JSON field 'digest' is 'sha256:1', expected 'sha256:2' (gave up after 3"
               " attempts in 5 s)",
     "attempts": [{"ok": False, "reason": "status 503, expected 200", "status": 503,
                   "latency_ms": 1.0, "excerpt": "{}"}]},
    {"check": "ready", "passed": False, "reason": "request failed: ConnectTimeout",
     "attempts": []}]}


def texts_before_the_seam(verdict: dict[str, Any]) -> tuple[str | None, str | None]:
    """(failure, evidence) as orchestrations/deploying.py wrote them from verify_release."""
    if not verdict["passed"]:
        return "verification failed: " + "; ".join(
            f"{v['check']}: {v['reason']}" for v in verdict["verdicts"] if not v["passed"]), None
    return None, "; ".join(f"{v['check']}: {v['reason']}" for v in verdict["verdicts"])


@pytest.mark.parametrize("results", [PASSING, FAILING], ids=["passing", "failing"])
def test_check_results_read_as_evidence_give_the_same_text_as_before(
        results: dict[str, Any]) -> None:
    evidence = evidence_from_results(results)
    failure, text = texts_before_the_seam(results)
    assert evidence.failure() == failure
    if failure is None:
        assert evidence.passed and evidence.summary == text
    else:
        assert not evidence.passed and evidence.verdict is Concluded.FAILED


@pytest.mark.parametrize("results", [PASSING, FAILING], ids=["passing", "failing"])
def test_the_verify_release_contract_survives_evidence(results: dict[str, Any]) -> None:
    assert check_results(evidence_from_results(results)) == results


@pytest.mark.parametrize("results", [PASSING, FAILING], ids=["passing", "failing"])
def test_evidence_round_trips_through_json(results: dict[str, Any]) -> None:
    evidence = evidence_from_results(results)
    again = Evidence.from_dict(json.loads(json.dumps(evidence.to_dict())))
    assert again == evidence
    assert again.kind == "http" and len(again.measurements) == len(results["verdicts"])


def test_verdicts_of_run_checks_fill_evidence_with_their_attempts() -> None:
    verdicts = [Verdict("health", True, "status 200 as expected",
                        [Attempt(True, "status 200 as expected", 200, 2.5, "ok")]),
                Verdict("slow", False, "request failed: ReadTimeout", [
                    Attempt(False, "request failed: ReadTimeout", None, 5000.0)])]
    evidence = evidence_of(verdicts)
    assert check_results(evidence) == {"passed": False,
                                       "verdicts": [v.to_dict() for v in verdicts]}
    assert evidence.failure() == "verification failed: slow: request failed: ReadTimeout"
    assert evidence.measurements[0].details["attempts"][0]["status"] == 200


def test_an_inconclusive_measurement_is_not_a_success() -> None:
    evidence = Evidence.of("analysis", (
        Measurement("error rate", Concluded.PASSED, "0.01 within [0, 0.05]", 0.01),
        Measurement("latency p95", Concluded.INCONCLUSIVE, "no data in the window")))
    assert not evidence.passed and evidence.verdict is Concluded.INCONCLUSIVE
    assert evidence.failure() == "verification failed: latency p95: no data in the window"
    assert Evidence.from_dict(evidence.to_dict()) == evidence
    assert evidence.to_dict()["measurements"][0] == {
        "name": "error rate", "verdict": "passed", "summary": "0.01 within [0, 0.05]",
        "value": 0.01, "details": {}}
