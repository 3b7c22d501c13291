"""`Evidence`: what a verification saw and what it concluded, as plain JSON and as text.

HTTP checks fill it today (shared/cluster/verification.py); `helm test` and metric analysis
will fill it next, each measurement one entry. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """What a measurement or a whole verification concluded; only PASSED counts as success."""

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"  # no data, provider unreachable: never a silent success


@dataclass(frozen=True)
class Measurement:
    """One check, test or query: its verdict, one line saying why, and what it measured."""

    name: str
    verdict: Verdict
    summary: str
    value: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict.value, "summary": self.summary,
                "value": self.value, "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        value = data.get("value")
        return cls(str(data["name"]), Verdict(data["verdict"]), str(data["summary"]),
                   None if value is None else float(value), dict(data.get("details") or {}))


@dataclass(frozen=True)
class Evidence:
    """A verification's result: `kind` says who measured (http, helmTest, analysis), `summary`
    is the one line the release's status and the ledger show."""

    kind: str
    verdict: Verdict
    summary: str
    measurements: tuple[Measurement, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    @classmethod
    def of(cls, kind: str, measurements: tuple[Measurement, ...],
           details: Mapping[str, Any] | None = None) -> Evidence:
        """Passed when every measurement passed; the summary names each measurement when all
        passed, else only those that did not (failed before inconclusive)."""
        if all(m.passed for m in measurements):
            verdict, shown = Verdict.PASSED, measurements
        else:
            verdict = Verdict.FAILED if any(m.verdict is Verdict.FAILED for m in measurements) \
                else Verdict.INCONCLUSIVE
            shown = tuple(m for m in measurements if not m.passed)
        summary = "; ".join(f"{m.name}: {m.summary}" for m in shown)
        return cls(kind, verdict, summary, measurements, dict(details or {}))

    def failure(self) -> str | None:
        """Why the verification did not pass, as the release's status says it; None if it did."""
        return None if self.passed else f"verification failed: {self.summary}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "verdict": self.verdict.value, "summary": self.summary,
                "measurements": [m.to_dict() for m in self.measurements],
                "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(str(data["kind"]), Verdict(data["verdict"]), str(data["summary"]),
                   tuple(Measurement.from_dict(m) for m in data.get("measurements") or ()),
                   dict(data.get("details") or {}))
