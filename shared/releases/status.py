"""A release's (or an operation's) custom status: what it does now, what it waits for, the
verification evidence so far and its history (`ReleaseStatus`, `HistoryEntry`).

The orchestrator's `Journal` writes it with `to_dict` (the keys and order earlier code
wrote); readers take it back with `from_dict`, which accepts a status of earlier code
(missing keys) and values of the wrong type as missing, and never raises. Holds no secret:
names, versions, digests, steps and reasons only. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.releases.outcomes import Outcome
from shared.releases.waiting import Waiting, waiting_from_dict


@dataclass(frozen=True)
class HistoryEntry:
    """One step of the release: when, where, what, and a note on it."""

    at: str | None
    environment: str | None
    step: str | None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        entry = {"at": self.at, "environment": self.environment, "step": self.step}
        return {**entry, "detail": self.detail} if self.detail else entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEntry:
        return cls(_text(data.get("at")), _text(data.get("environment")),
                   _text(data.get("step")), _text(data.get("detail")))


@dataclass(frozen=True)
class HelmDeployed:
    """What a Helm environment runs after this release: the chart and Helm's revision."""

    chart: str | None
    version: str | None
    digest: str | None
    revision: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"chart": self.chart, "version": self.version, "digest": self.digest,
                "revision": self.revision}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HelmDeployed:
        revision = data.get("revision")
        return cls(_text(data.get("chart")), _text(data.get("version")),
                   _text(data.get("digest")),
                   revision if isinstance(revision, int) and not isinstance(revision, bool)
                   else None)


@dataclass(frozen=True)
class ReleaseStatus:
    """The custom status; `finished` once `outcome` and `reason` are written."""

    release_id: str | None
    service: str | None
    version: str | None
    digest: str | None
    pushed_by: str | None = None
    environment: str | None = None
    step: str | None = "starting"
    waiting_for: Waiting | None = None
    evidence: Mapping[str, str | None] = field(default_factory=dict)
    history: tuple[HistoryEntry, ...] = ()
    overwrites: Mapping[str, Any] | None = None  # what the tag named before (no secret)
    operation: Mapping[str, Any] | None = None  # an operation's who, what and why
    helm: Mapping[str, HelmDeployed] = field(default_factory=dict)  # by environment
    finished: bool = False
    outcome: Outcome | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "releaseId": self.release_id, "service": self.service, "version": self.version,
            "digest": self.digest, "pushedBy": self.pushed_by, "environment": self.environment,
            "step": self.step,
            "waitingFor": self.waiting_for.to_dict() if self.waiting_for else None,
            "evidence": dict(self.evidence), "history": [e.to_dict() for e in self.history]}
        if self.overwrites:
            data["overwrites"] = dict(self.overwrites)
        if self.operation is not None:
            data["operation"] = dict(self.operation)
        if self.helm:  # Helm targets only: other statuses keep the keys they always had
            data["helm"] = {name: deployed.to_dict() for name, deployed in self.helm.items()}
        if self.finished:
            data["outcome"] = self.outcome.value if self.outcome else None
            data["reason"] = self.reason
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ReleaseStatus:
        """The status a custom status value holds; an empty one for anything else."""
        data = data if isinstance(data, Mapping) else {}
        evidence = data.get("evidence")
        history = data.get("history")
        outcome = data.get("outcome")
        return cls(
            release_id=_text(data.get("releaseId")), service=_text(data.get("service")),
            version=_text(data.get("version")), digest=_text(data.get("digest")),
            pushed_by=_text(data.get("pushedBy")), environment=_text(data.get("environment")),
            step=_text(data.get("step")), waiting_for=waiting_from_dict(data.get("waitingFor")),
            evidence={name: _text(line) for name, line in evidence.items()
                      if isinstance(name, str)} if isinstance(evidence, Mapping) else {},
            history=tuple(HistoryEntry.from_dict(e) for e in history if isinstance(e, Mapping))
            if isinstance(history, list) else (),
            overwrites=_mapping(data.get("overwrites")),
            operation=_mapping(data.get("operation")),
            helm={name: HelmDeployed.from_dict(entry)
                  for name, entry in (_mapping(data.get("helm")) or {}).items()
                  if isinstance(name, str) and isinstance(entry, Mapping)},
            finished="outcome" in data,
            outcome=Outcome(outcome) if outcome in _OUTCOMES else None,
            reason=_text(data.get("reason")))


_OUTCOMES = frozenset(o.value for o in Outcome)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None
