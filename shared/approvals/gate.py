"""The rules of one approval gate: event names, reminder times, escalation, counting decisions.

Pure and deterministic, for the release orchestration (which may not read a clock) and the
`check_approval` activity. A gate is the plan's `gate` dict (see shared/policy/model.Gate).
Does not verify links or read the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.approvals.identity import Principal, may_approve

APPROVED, REJECTED = "Approved", "Rejected"


def decision_event(environment: str, number: int) -> str:
    """The event name of the gate's `number`-th decision (1-based).

    Each wait gets its own name: the SDK hands an event raised before its wait to every
    later wait of the same name."""
    return f"approval:{environment}:{number}"


@dataclass(frozen=True)
class GateRules:
    """Who may approve, how many must, and when to remind and give up."""

    users: tuple[str, ...]
    groups: tuple[str, ...]
    required: int
    deadline: timedelta
    reminder_interval: timedelta | None
    escalation_group: str | None
    escalate_after: int | None
    webhook_secret: str | None

    @classmethod
    def from_spec(cls, gate: Mapping[str, Any]) -> GateRules:
        approvers = gate.get("approvers") or {}
        escalation = gate.get("escalation") or {}
        interval = gate.get("reminderIntervalSeconds")
        return cls(users=tuple(approvers.get("users") or ()),
                   groups=tuple(approvers.get("groups") or ()),
                   required=int(gate.get("requiredApprovals") or 1),
                   deadline=timedelta(seconds=gate["deadlineSeconds"]),
                   reminder_interval=timedelta(seconds=interval) if interval else None,
                   escalation_group=escalation.get("group"),
                   escalate_after=escalation.get("afterReminders"),
                   webhook_secret=gate.get("teamsWebhookSecret"))

    @property
    def reminders(self) -> int:
        """Reminders sent before the deadline: at every interval after opening, strictly before."""
        if self.reminder_interval is None:
            return 0
        return -(-self.deadline // self.reminder_interval) - 1

    def next_wake(self, opened: datetime, reminders_sent: int) -> datetime:
        """When to wake next: the next reminder, or the deadline.

        Counted from the opening, so a reminder sent late does not push the next one back."""
        deadline = opened + self.deadline
        if self.reminder_interval is None or reminders_sent >= self.reminders:
            return deadline
        return min(deadline, opened + (reminders_sent + 1) * self.reminder_interval)

    def escalated_to(self, reminder_number: int) -> str | None:
        """The escalation group told with this reminder, if any."""
        if self.escalation_group is None:
            return None
        return self.escalation_group if reminder_number >= (self.escalate_after or 1) else None

    def judge(self, decision: Mapping[str, Any], pusher: str | None,
              environment: str) -> tuple[bool, str]:
        """Whether the person behind a decision event may decide here, and why."""
        identities = [i for i in decision.get("identities") or () if isinstance(i, str) and i]
        name = decision.get("approver") or (identities[0] if identities else "")
        if not isinstance(name, str) or not name.strip():
            return False, "the decision names no approver"
        principal = Principal(name=name.strip(), aliases=frozenset(identities),
                              groups=frozenset(g for g in decision.get("groups") or ()
                                               if isinstance(g, str)),
                              provider="event")
        return may_approve(principal, users=self.users, groups=self.groups, pusher=pusher,
                           environment=environment)


@dataclass
class Tally:
    """Counted decisions at one gate; the outcome once a reject or enough approvals arrive."""

    required: int
    approvals: list[dict[str, str]] = field(default_factory=list)
    outcome: str | None = None
    reason: str | None = None

    def add(self, verdict: Mapping[str, Any]) -> None:
        """Count a `check_approval` verdict (uncounted ones and repeats change nothing)."""
        if not verdict.get("counted") or self.outcome is not None:
            return
        who = verdict.get("identity") or verdict["by"]
        comment = f": {verdict['comment']}" if verdict.get("comment") else ""
        if verdict["decision"] == "reject":
            self.outcome, self.reason = REJECTED, f"rejected by {verdict['by']}{comment}"
            return
        if who in {a["identity"] for a in self.approvals}:
            return
        self.approvals.append({"by": verdict["by"], "identity": who, "at": verdict["at"]})
        if len(self.approvals) >= self.required:
            names = ", ".join(a["by"] for a in self.approvals)
            self.outcome, self.reason = APPROVED, f"approved by {names}{comment}"

    def summary(self) -> list[dict[str, str]]:
        return [{"by": a["by"], "at": a["at"]} for a in self.approvals]


def decided_by(uses: Iterable[Any]) -> str | None:
    """"approved by X at T" for the first counted use, for pages of a closed gate."""
    for use in uses:
        if getattr(use, "counted", False):
            verb = "approved" if use.decision == "approve" else "rejected"
            return f"{verb} by {use.by} at {use.at.isoformat()}"
    return None
