"""Analysis rounds as people see them: the dashboard, the approval page and `releasectl`.

`AnalysisRound.from_dict` reads one entry of the releases API's `analysis` (the ledger's
`RecordedRound.to_dict()`), `AnalysisRound.of` a recorded round itself; both keep names,
verdicts, numbers and one-line summaries, each cut to a bound (a summary may hold a
provider's message). Pure: no I/O. Does not record or decide anything (shared/ledger/evidence.py,
shared/analysis/).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.text import one_line
from shared.timefmt import as_utc

NAME_LIMIT = 80
SUMMARY_LIMIT = 300
METRICS_PER_ROUND = 20
VERDICTS = ("passed", "failed", "inconclusive")


class RecordedMeasurement(Protocol):
    """What is read of a measurement the ledger keeps (shared/deploy/evidence.py)."""

    @property
    def name(self) -> str: ...

    @property
    def summary(self) -> str: ...

    @property
    def value(self) -> float | None: ...

    @property
    def verdict(self) -> Any: ...


class RecordedEvidence(Protocol):
    @property
    def verdict(self) -> Any: ...

    @property
    def summary(self) -> str: ...

    @property
    def measurements(self) -> Sequence[RecordedMeasurement]: ...


class Recorded(Protocol):
    """A round as the ledger keeps it (shared/ledger/evidence.py `RecordedRound`)."""

    @property
    def environment(self) -> str: ...

    @property
    def round(self) -> int: ...

    @property
    def at(self) -> datetime: ...

    @property
    def evidence(self) -> RecordedEvidence: ...


@dataclass(frozen=True)
class MetricShown:
    """One metric of a round: its name, verdict, number (None when it measured none)."""

    name: str
    verdict: str
    value: float | None
    summary: str

    @property
    def number(self) -> str:
        return number(self.value)


@dataclass(frozen=True)
class AnalysisRound:
    """One round of one environment's analysis, bounded and on one line per text."""

    environment: str
    round: int
    at: datetime | None
    verdict: str
    summary: str
    metrics: tuple[MetricShown, ...]

    @classmethod
    def from_dict(cls, data: Any) -> AnalysisRound | None:
        """An entry of the API's `analysis`; None for anything that is not one."""
        if not isinstance(data, Mapping) or not isinstance(data.get("environment"), str):
            return None
        number_ = data.get("round")
        if isinstance(number_, bool) or not isinstance(number_, int):
            return None
        metrics = data.get("measurements")
        shown = [_metric(m.get("name"), m.get("verdict"), m.get("value"), m.get("summary"))
                 for m in (metrics if isinstance(metrics, list) else [])
                 if isinstance(m, Mapping)]
        return cls(_text(data["environment"], NAME_LIMIT), number_, as_utc(data.get("at")),
                   _verdict(data.get("verdict")), _text(data.get("summary"), SUMMARY_LIMIT),
                   tuple(shown[:METRICS_PER_ROUND]))

    @classmethod
    def of(cls, recorded: Recorded) -> AnalysisRound:
        """A round the ledger keeps, as shown."""
        evidence = recorded.evidence
        return cls(_text(recorded.environment, NAME_LIMIT), int(recorded.round),
                   as_utc(recorded.at), _verdict(evidence.verdict),
                   _text(evidence.summary, SUMMARY_LIMIT),
                   tuple(_metric(m.name, m.verdict, m.value, m.summary)
                         for m in list(evidence.measurements)[:METRICS_PER_ROUND]))

    def numbers(self) -> str:
        """`health = 1; p95 = 0.231`: each metric's number, on one line."""
        return "; ".join(f"{m.name} = {m.number}" for m in self.metrics)


def rounds_from(value: Any) -> tuple[AnalysisRound, ...]:
    """The API's `analysis` (a list of rounds; anything else is no rounds)."""
    if not isinstance(value, list):
        return ()
    return tuple(r for r in (AnalysisRound.from_dict(entry) for entry in value)
                 if r is not None)


def by_environment(rounds: Iterable[AnalysisRound]
                   ) -> tuple[tuple[str, tuple[AnalysisRound, ...]], ...]:
    """The rounds per environment, environments in the order of their first round, each
    environment's rounds by number."""
    grouped: dict[str, list[AnalysisRound]] = {}
    for shown in rounds:
        grouped.setdefault(shown.environment, []).append(shown)
    return tuple((environment, tuple(sorted(found, key=lambda r: r.round)))
                 for environment, found in grouped.items())


def number(value: float | None) -> str:
    """A measured number as people read it: `1`, `0.75`, `0.2314`, `1.5e+06`; `—` for none."""
    if value is None or not math.isfinite(value):
        return "—" if value is None else str(value)
    return f"{value:.4g}"


def _metric(name: Any, verdict: Any, value: Any, summary: Any) -> MetricShown:
    shown = float(value) if isinstance(value, int | float) and not isinstance(
        value, bool) else None
    return MetricShown(_text(name, NAME_LIMIT) or "?", _verdict(verdict), shown,
                       _text(summary, SUMMARY_LIMIT))


def _verdict(value: Any) -> str:
    """`passed`, `failed` or `inconclusive` (an enum's value too); `unknown` for others."""
    said = str(getattr(value, "value", value) or "")
    return said if said in VERDICTS else "unknown"


def _text(value: Any, limit: int) -> str:
    return "" if value is None else one_line(value, limit, cut="…")
