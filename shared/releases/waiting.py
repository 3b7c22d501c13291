"""What a running release waits for, as its custom status's `waitingFor` says: a gate's
approvals (`ApprovalWait`), a person's choice after a failed deployment (`FailureWait`), or
another release's turn in an environment (`TurnWait`).

The orchestrator writes them with `to_dict` (the keys earlier code wrote, in that order);
the dashboard and the decision endpoints read them back with `waiting_from_dict`, which
takes whatever a custom status holds (written by earlier code, or not at all) and never
raises. A gate's approvals and links stay the dicts the tally and `request_approval` wrote;
readers take them as `CountedApproval` and `GateLink`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class CountedApproval:
    """One approval the gate counted: who, and when (an ISO time)."""

    by: str | None
    at: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CountedApproval:
        return cls(_text(data.get("by")), _text(data.get("at")))


@dataclass(frozen=True)
class GateLink:
    """A signed link to the gate's page and the approver it names."""

    approver: str | None
    url: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateLink:
        return cls(_text(data.get("approver")), _text(data.get("url")))


@dataclass(frozen=True)
class ApprovalWait:
    """A gate open for decisions: what counted so far, the deadline, the approval links."""

    environment: str | None
    event: str | None
    deadline: str | None
    required_approvals: int | None = None
    approvals: tuple[Mapping[str, Any], ...] = ()
    reminders: int | None = None
    approval_page: str | None = None
    approval_links: tuple[Mapping[str, Any], ...] = ()
    kind: Literal["approval"] = "approval"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "environment": self.environment, "event": self.event,
                "deadline": self.deadline, "requiredApprovals": self.required_approvals,
                "approvals": [dict(a) for a in self.approvals], "reminders": self.reminders,
                "approvalPage": self.approval_page,
                "approvalLinks": [dict(link) for link in self.approval_links]}

    @property
    def counted(self) -> tuple[CountedApproval, ...]:
        """`approvals` read as typed entries (fields of the wrong type read as missing)."""
        return tuple(CountedApproval.from_dict(a) for a in self.approvals)

    @property
    def links(self) -> tuple[GateLink, ...]:
        """`approval_links` read as typed entries (fields of the wrong type read as missing)."""
        return tuple(GateLink.from_dict(link) for link in self.approval_links)


@dataclass(frozen=True)
class FailureWait:
    """A failed deployment left in place until a person rolls it back or keeps it."""

    environment: str | None
    event: str | None
    deadline: str | None
    failure: str | None = None
    on_deadline: str | None = None
    kind: Literal["failure"] = "failure"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "environment": self.environment, "event": self.event,
                "deadline": self.deadline, "failure": self.failure,
                "onDeadline": self.on_deadline}


@dataclass(frozen=True)
class TurnWait:
    """Another release or operation deploys in the environment first; waits until `until`."""

    behind: str | None
    until: str | None
    kind: Literal["turn"] = "turn"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "behind": self.behind, "until": self.until}


Waiting = ApprovalWait | FailureWait | TurnWait


def waiting_from_dict(data: Any) -> Waiting | None:
    """The wait a `waitingFor` value describes; None for nothing, an empty or unknown one.

    A wait without `kind` is a gate's (the first statuses wrote none). Fields of the wrong
    type read as missing."""
    if not isinstance(data, Mapping) or not data:
        return None
    kind = data.get("kind")
    if kind in ("approval", None):
        return ApprovalWait(
            environment=_text(data.get("environment")), event=_text(data.get("event")),
            deadline=_text(data.get("deadline")),
            required_approvals=_count(data.get("requiredApprovals")),
            approvals=_mappings(data.get("approvals")), reminders=_count(data.get("reminders")),
            approval_page=_text(data.get("approvalPage")),
            approval_links=_mappings(data.get("approvalLinks")))
    if kind == "failure":
        return FailureWait(
            environment=_text(data.get("environment")), event=_text(data.get("event")),
            deadline=_text(data.get("deadline")), failure=_text(data.get("failure")),
            on_deadline=_text(data.get("onDeadline")))
    if kind == "turn":
        return TurnWait(behind=_text(data.get("behind")), until=_text(data.get("until")))
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def _mappings(value: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(v for v in value if isinstance(v, Mapping)) if isinstance(value, list) else ()
