"""How a release ends (`Outcome`), how one of its gates closed (`GateDecision`) and how
deploying one of its environments went (`StageResult`, what `deploy_environment` returns).

Both travel as plain JSON (orchestration output, custom status, sub-orchestration results in
Durable history): `to_dict` writes the keys earlier code wrote, `from_dict` reads what any
earlier code wrote, missing keys included. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """How a release or an operation ended, as the custom status and the ledger spell it."""

    COMPLETED = "Completed"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    SUPERSEDED = "Superseded"


APPROVED = "Approved"


@dataclass(frozen=True)
class GateDecision:
    """How a gate closed: approved, or the release's outcome there (rejected, expired,
    superseded, failed); why, and the card that tells the gate's approvers (empty when the
    gate never opened)."""

    outcome: str  # APPROVED, or an Outcome's value
    reason: str | None
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def approved(self) -> bool:
        return self.outcome == APPROVED

    @property
    def ended(self) -> Outcome:
        """The release's outcome when the gate did not approve it."""
        return Outcome(self.outcome)


@dataclass(frozen=True)
class StageResult:
    """How deploying one environment went.

    `rolled_back` is None when nothing was deployed (refused, or failed before the deploy);
    `paused` when a person is to choose between rollback and keep, `kept` once they kept it;
    `outcome` is the release's when the stage is not healthy."""

    healthy: bool
    reason: str | None = None
    snapshot: dict[str, Any] | None = None  # what ran before: the rollback's target
    evidence: str | None = None
    rolled_back: bool | None = None
    paused: bool = False
    kept: bool = False
    outcome: Outcome | None = None
    chart: dict[str, Any] | None = None  # the Helm chart pinned and deployed (PinnedChart)
    revision: int | None = None  # the Helm revision it made
    inconclusive: bool = False  # its analysis could neither pass nor fail: a person decides

    @property
    def failed_deploying(self) -> bool:
        """The deploy itself failed (as opposed to a refusal or a failure before it)."""
        return not self.healthy and self.rolled_back is not None

    def to_dict(self) -> dict[str, Any]:
        if self.healthy:
            done = {"healthy": True, "snapshot": self.snapshot, "evidence": self.evidence}
            return {**done, **self._helm()}
        data: dict[str, Any] = {"healthy": False}
        if self.rolled_back is not None:
            data["rolledBack"] = self.rolled_back
        if self.paused:
            data["paused"] = True
        if self.inconclusive:
            data["inconclusive"] = True
        if self.kept:
            data["kept"] = True
        data["reason"] = self.reason
        if self.snapshot is not None:
            data["snapshot"] = self.snapshot
        if self.outcome is not None:
            data["outcome"] = self.outcome.value
        return {**data, **self._helm()}

    def _helm(self) -> dict[str, Any]:
        """The Helm keys, written only for Helm targets (earlier results had none)."""
        helm: dict[str, Any] = {"chart": self.chart} if self.chart else {}
        return {**helm, "revision": self.revision} if self.revision is not None else helm

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageResult:
        outcome = data.get("outcome")
        return cls(healthy=bool(data.get("healthy")), reason=data.get("reason"),
                   snapshot=data.get("snapshot"), evidence=data.get("evidence"),
                   rolled_back=bool(data["rolledBack"]) if "rolledBack" in data else None,
                   paused=bool(data.get("paused")), kept=bool(data.get("kept")),
                   inconclusive=bool(data.get("inconclusive")),
                   outcome=Outcome(outcome) if outcome else None,
                   chart=data.get("chart") or None,
                   revision=data["revision"] if isinstance(data.get("revision"), int) else None)
