"""The rules of one approval gate: event names, who may decide, counting decisions.

Pure and deterministic, for the release orchestration (which may not read a clock) and the
`check_approval` activity. A gate is `shared.policy.Gate`, which also holds its reminder
times and escalation. Does not verify links or read the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.approvals.identity import Principal, may_approve
from shared.policy.model import Gate

APPROVED, REJECTED = "Approved", "Rejected"


def decision_event(environment: str, number: int) -> str:
    """The event name of the gate's `number`-th decision (1-based).

    Each wait gets its own name: the SDK hands an event raised before its wait to every
    later wait of the same name."""
    return f"approval:{environment}:{number}"


def judge(gate: Gate, decision: Mapping[str, Any], pusher: str | None,
          environment: str) -> tuple[bool, str]:
    """Whether the person behind a decision event may decide at `gate`, and why."""
    identities = [i for i in decision.get("identities") or () if isinstance(i, str) and i]
    name = decision.get("approver") or (identities[0] if identities else "")
    if not isinstance(name, str) or not name.strip():
        return False, "the decision names no approver"
    principal = Principal(name=name.strip(), aliases=frozenset(identities),
                          groups=frozenset(g for g in decision.get("groups") or ()
                                           if isinstance(g, str)),
                          provider="event")
    return may_approve(principal, users=gate.users, groups=gate.groups, pusher=pusher,
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
