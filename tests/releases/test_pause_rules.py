"""The pure rules of a failed deployment that waits for a person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.policy import Rollback
from shared.releases.pause import Choice, PauseRules, failure_event, on_deadline, read_choice

DEADLINE = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_only_a_pausing_rollback_has_rules() -> None:
    assert PauseRules.of(Rollback.from_dict({"onFailure": "environment"})) is None
    assert PauseRules.of(Rollback.from_dict({"onFailure": "environment",
                                             "pauseForHuman": False})) is None
    rules = PauseRules.of(Rollback.from_dict({"onFailure": "environmentAndEarlier",
                                              "pauseForHuman": True,
                                              "pauseDeadlineSeconds": 7200}))
    assert rules == PauseRules(timedelta(hours=2), "rollback")


def test_without_rollback_the_deadline_keeps_and_the_default_deadline_is_a_day() -> None:
    rules = PauseRules.of(Rollback.from_dict({"onFailure": "none", "pauseForHuman": True}))
    assert rules == PauseRules(timedelta(hours=24), "keep")
    assert on_deadline(rules) == Choice("keep", None, None)


def test_an_inconclusive_analysis_waits_for_a_person_even_without_pause_for_human() -> None:
    rollback = Rollback.from_dict({"onFailure": "environment"})
    assert PauseRules.of(rollback) is None
    assert PauseRules.of(rollback, inconclusive=True) == PauseRules(timedelta(hours=24),
                                                                    "rollback")
    keeping = Rollback.from_dict({"onFailure": "none", "pauseDeadlineSeconds": 600})
    assert PauseRules.of(keeping, inconclusive=True) == PauseRules(timedelta(minutes=10),
                                                                   "keep")


def test_each_wait_has_its_own_event_name() -> None:
    assert failure_event("prod", 1) == "failure:prod:1"
    assert failure_event("prod", 2) != failure_event("prod", 1)


@pytest.mark.parametrize("data, problem", [
    ("rollback", "expected an object"),
    ({"decision": "retry", "by": "ann"}, "decision must be one of rollback, keep"),
    ({"decision": "keep"}, "by is missing"),
    ({"decision": "keep", "by": "  "}, "by is missing"),
])
def test_a_choice_that_cannot_be_taken_says_why(data: object, problem: str) -> None:
    assert read_choice(data) == problem


def test_a_choice_is_read_as_one_line_text() -> None:
    choice = read_choice({"decision": "rollback", "by": " ann\n@example.com ",
                          "reason": "bad\n\nbuild " + "x" * 600})
    assert isinstance(choice, Choice)
    assert (choice.choice, choice.by) == ("rollback", "ann @example.com")
    assert choice.reason is not None and len(choice.reason) == 500
    assert choice.reason.startswith("bad build x")
    assert read_choice({"decision": "keep", "by": "ann", "reason": "   "}) == Choice(
        "keep", "ann", None)


def test_what_was_chosen_reads_well() -> None:
    assert Choice("rollback", "ann", "bad build").describe(DEADLINE) == \
        "rolled back by ann: bad build"
    assert Choice("keep", "ann", None).describe(DEADLINE) == "kept in place by ann"
    assert Choice("rollback", None, None).describe(DEADLINE) == \
        "rolled back: no decision by 2026-11-22T12:00:00+00:00"
