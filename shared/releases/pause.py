"""A failed deployment that waits for a person (`rollback.pauseForHuman`): the rules, pure.

Instead of restoring at once, the release waits up to `pauseDeadline` for someone to
choose: `rollback` (restore the previous deployment now) or `keep` (leave the failed
version running; the release ends Failed). Without a choice by the deadline the
environment's `onFailure` applies, as it would have at once without the pause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.policy.model import DEFAULT_PAUSE_DEADLINE, Rollback
from shared.text import one_line

CHOICES = ("rollback", "keep")
MAX_REASON = 500


@dataclass(frozen=True)
class PauseRules:
    """How long a failed deployment waits, and what happens when nobody chooses."""

    deadline: timedelta
    on_deadline: str  # "rollback" or "keep"

    @classmethod
    def of(cls, rollback: Rollback, *, inconclusive: bool = False) -> PauseRules | None:
        """The rules of a stage's rollback; None when it does not pause. An inconclusive
        analysis always waits for a person (its deadline and default are the rollback's)."""
        if not rollback.pause_for_human and not inconclusive:
            return None
        on_deadline = "keep" if rollback.on_failure == "none" else "rollback"
        return cls(rollback.pause_deadline or DEFAULT_PAUSE_DEADLINE, on_deadline)


@dataclass(frozen=True)
class Choice:
    """A person's choice (or the deadline's) for one failed deployment."""

    choice: str
    by: str | None
    reason: str | None

    def describe(self, deadline: datetime) -> str:
        """What was chosen, for the release's reason."""
        verb = "rolled back" if self.choice == "rollback" else "kept in place"
        if self.by is None:
            return f"{verb}: no decision by {deadline.isoformat()}"
        return f"{verb} by {self.by}" + (f": {self.reason}" if self.reason else "")


def failure_event(environment: str, number: int) -> str:
    """The event name one wait for a choice listens on (a new name for each wait)."""
    return f"failure:{environment}:{number}"


def read_choice(data: Any) -> Choice | str:
    """The choice in an event's data, or why it cannot be taken."""
    if not isinstance(data, dict):
        return "expected an object"
    choice = data.get("decision")
    if choice not in CHOICES:
        return f"decision must be one of {', '.join(CHOICES)}"
    by = data.get("by")
    if not isinstance(by, str) or not by.strip():
        return "by is missing"
    reason = data.get("reason")
    said = one_line(reason, MAX_REASON) if isinstance(reason, str) else ""
    return Choice(choice, one_line(by, 256), said or None)


def on_deadline(rules: PauseRules) -> Choice:
    """What the deadline chooses."""
    return Choice(rules.on_deadline, None, None)
