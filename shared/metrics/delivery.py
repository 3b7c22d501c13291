"""The four delivery figures (DORA) of a window, per service and for all: the rules. Pure.

From the ledger's release rows (docs/operating-releases.md, "Delivery metrics", says each
rule in words): a production deployment is a release (not an operation) whose stage in the
service's production environment (the last of its policy) ended Healthy, RolledBack or
Failed after reaching the cluster; it counts in the window its stage ended in. Lead time
runs from the push event's receipt to production Healthy; a change failure is a production
deployment that ended RolledBack or Failed; time to restore runs from such a failure to
the service's next healthy production moment (a release Healthy there, or a rollback or
redeploy Completed there). Reads nothing: the caller passes the rows and push times.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from shared.ledger.records import ReleaseRecord, utc
from shared.releases.operations import operation_kind

HEALTHY = "Healthy"
FAILED_STATES = ("RolledBack", "Failed")
DEPLOYED_STATES = (HEALTHY, *FAILED_STATES)
OPERATION_DONE = "Completed"
# A failure refused before the cluster says so in its reason: nothing ran in production.
NOT_DEPLOYED = ("nothing deployed", "deployed nothing")
# A later operation's mark on a release's stage names it: the stage's time is then its time.
OPERATION_MARK = re.compile(r"\((?:rollback|redeploy):[^()\s]+:\d+\)")
MIN_DAYS, MAX_DAYS = 1, 365
DEFAULT_DAYS = 30
DAILY_UP_TO = 60  # windows up to this many days are charted per day, longer ones per week


@dataclass(frozen=True)
class ProductionDeployment:
    """A release that reached production, and how its production stage ended.

    `own_time` is False when a later rollback or redeploy marked that stage: the ledger
    keeps one time per stage, so `at` is then the operation's time, not the deployment's."""

    release_id: str
    service: str
    digest: str
    state: str
    at: datetime
    created_at: datetime
    own_time: bool

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES


@dataclass(frozen=True)
class Bucket:
    """One bar of a chart: the deployments of the window that ended in [start, start + days)
    (the first and last bucket may hold part of their days only)."""

    start: datetime
    days: int
    healthy: int = 0
    failed: int = 0
    lead_times: tuple[float, ...] = ()
    restores: tuple[float, ...] = ()

    @property
    def deployments(self) -> int:
        return self.healthy + self.failed

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.deployments if self.deployments else None


@dataclass(frozen=True)
class Figures:
    """The four figures of one service (or all) over a window; None where there is no data."""

    days: int
    deployments: int
    failed: int
    lead_times: tuple[float, ...]   # seconds, one per change that became healthy
    restores: tuple[float, ...]     # seconds, one per restored failure
    unrestored: int                 # failures not followed by a healthy moment yet
    buckets: tuple[Bucket, ...] = field(default=(), compare=False)

    @property
    def per_day(self) -> float:
        return self.deployments / self.days

    @property
    def change_failure_rate(self) -> float | None:
        return self.failed / self.deployments if self.deployments else None

    @property
    def lead_time_median(self) -> float | None:
        return statistics.median(self.lead_times) if self.lead_times else None

    @property
    def lead_time_p90(self) -> float | None:
        return percentile(self.lead_times, 90)

    @property
    def restore_median(self) -> float | None:
        return statistics.median(self.restores) if self.restores else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: counts, and null where a figure has no data."""
        return {
            "deploymentFrequency": {"deployments": self.deployments,
                                    "perDay": round(self.per_day, 4)},
            "leadTime": {"changes": len(self.lead_times),
                         "medianSeconds": _seconds(self.lead_time_median),
                         "p90Seconds": _seconds(self.lead_time_p90)},
            "changeFailureRate": {"deployments": self.deployments, "failed": self.failed,
                                  "rate": None if self.change_failure_rate is None
                                  else round(self.change_failure_rate, 4)},
            "timeToRestore": {"restored": len(self.restores), "unrestored": self.unrestored,
                              "medianSeconds": _seconds(self.restore_median)},
        }


@dataclass(frozen=True)
class DeliveryReport:
    """The figures of a window, for each service (by name, with its production environment)
    and for all of them together."""

    since: datetime
    until: datetime
    days: int
    service: str | None               # the one service asked for, or None for all
    production: dict[str, str]
    by_service: dict[str, Figures]
    all: Figures

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days, "since": self.since.isoformat(),
            "until": self.until.isoformat(), "service": self.service,
            "all": self.all.to_dict(),
            "services": {name: {"production": self.production[name], **figures.to_dict()}
                         for name, figures in self.by_service.items()},
        }


def percentile(values: Iterable[float], rank: int) -> float | None:
    """The nearest-rank percentile: the smallest value with `rank` % of values at or below."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(rank / 100 * len(ordered))) - 1]


def check_days(days: int) -> int:
    """`days` when it is a window this module computes (1 to 365); ValueError otherwise."""
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days must be a whole number from {MIN_DAYS} to {MAX_DAYS}, "
                         f"not {days}")
    return days


def production_deployments(rows: Iterable[ReleaseRecord],
                           production: Mapping[str, str]) -> list[ProductionDeployment]:
    """The releases among `rows` that reached their service's production environment and
    ended there, oldest first; operations and services without a production are left out."""
    found = []
    for row in rows:
        environment = production.get(row.service)
        stage = row.stages.get(environment) if environment else None
        if operation_kind(row.release_id) != "release" or stage is None \
                or stage.state not in DEPLOYED_STATES or stage.finished is None:
            continue
        detail = (stage.detail or "").lower()
        if stage.state == "Failed" and any(words in detail for words in NOT_DEPLOYED):
            continue
        found.append(ProductionDeployment(
            row.release_id, row.service, row.digest, stage.state, stage.finished,
            row.created_at, own_time=OPERATION_MARK.search(stage.detail or "") is None))
    return sorted(found, key=lambda d: (d.at, d.release_id))


def healthy_moments(rows: Iterable[ReleaseRecord],
                    production: Mapping[str, str]) -> dict[str, list[datetime]]:
    """Per service, when production became healthy: a release's production stage ending
    Healthy, or a rollback or redeploy of production Completed; in order."""
    moments: dict[str, list[datetime]] = {}
    for row in rows:
        environment = production.get(row.service)
        stage = row.stages.get(environment) if environment else None
        if stage is None or stage.finished is None:
            continue
        is_release = operation_kind(row.release_id) == "release"
        if (is_release and stage.state == HEALTHY) or \
                (not is_release and row.state == OPERATION_DONE):
            moments.setdefault(row.service, []).append(stage.finished)
    return {service: sorted(times) for service, times in moments.items()}


def needing_push_times(rows: Iterable[ReleaseRecord], production: Mapping[str, str],
                       since: datetime, until: datetime) -> list[ProductionDeployment]:
    """The deployments whose lead time the window measures: Healthy in production at their
    own time within the window. The caller looks up when each one's push was received."""
    return [d for d in production_deployments(rows, production)
            if d.state == HEALTHY and d.own_time and since <= d.at <= until]


def delivery_report(rows: Iterable[ReleaseRecord], production: Mapping[str, str],
                    pushed: Mapping[str, datetime], *, since: datetime, until: datetime,
                    service: str | None = None) -> DeliveryReport:
    """The figures of the window [since, until] from `rows` (every row created or updated in
    it, and more do no harm); `pushed` maps a release id to its push's receipt (a release
    not in it is measured from its creation). Whole days: `until - since` rounded up."""
    since, until = utc(since), utc(until)
    days = max(1, math.ceil((until - since) / timedelta(days=1)))
    rows = list(rows)
    services = [service] if service is not None else sorted(production)
    chosen = {name: production[name] for name in services}
    deployments = [d for d in production_deployments(rows, chosen) if since <= d.at <= until]
    healthy = healthy_moments(rows, chosen)
    by_service = {name: _figures([d for d in deployments if d.service == name], healthy,
                                 pushed, since, until, days) for name in services}
    return DeliveryReport(since, until, days, service, chosen, by_service,
                          _figures(deployments, healthy, pushed, since, until, days))


def _figures(deployments: list[ProductionDeployment], healthy: Mapping[str, list[datetime]],
             pushed: Mapping[str, datetime], since: datetime, until: datetime,
             days: int) -> Figures:
    origin, size = chart_days(since, days)
    step = timedelta(days=size)
    slots: list[dict[str, Any]] = [
        {"healthy": 0, "failed": 0, "lead": [], "restore": []}
        for _ in range(max(1, math.ceil((until - origin) / step)))]
    lead_times, restores, unrestored = [], [], 0
    for d in deployments:
        slot = slots[min(len(slots) - 1, int((d.at - origin) / step))]
        slot["failed" if d.failed else "healthy"] += 1
        if not d.failed and d.own_time:
            start = pushed.get(d.release_id, d.created_at)
            lead = max(0.0, (d.at - start).total_seconds())
            lead_times.append(lead)
            slot["lead"].append(lead)
        elif d.failed and d.own_time:
            after = [moment for moment in healthy.get(d.service, []) if moment > d.at]
            if after:
                restore = (after[0] - d.at).total_seconds()
                restores.append(restore)
                slot["restore"].append(restore)
            else:
                unrestored += 1
    starts = [origin + index * step for index in range(len(slots))]
    buckets = tuple(
        Bucket(start, min(size, math.ceil((until - start) / timedelta(days=1))),
               slot["healthy"], slot["failed"], tuple(slot["lead"]), tuple(slot["restore"]))
        for start, slot in zip(starts, slots, strict=True))
    return Figures(days, len(deployments), sum(d.failed for d in deployments),
                   tuple(lead_times), tuple(restores), unrestored, buckets)


def chart_days(since: datetime, days: int) -> tuple[datetime, int]:
    """Where a window's chart buckets start (midnight UTC of its first day: bars are
    calendar days) and how many days each holds (1, or 7 beyond DAILY_UP_TO days)."""
    return datetime.combine(since.date(), time(), tzinfo=UTC), 1 if days <= DAILY_UP_TO else 7


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def describe_duration(seconds: float | None) -> str:
    """`45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`; `no data` for None."""
    if seconds is None:
        return "no data"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, hours = whole // 60, whole // 3600
    if hours == 0:
        return f"{minutes} min"
    if hours < 48:
        rest = minutes - hours * 60
        return f"{hours} h" + (f" {rest} min" if rest else "")
    days, rest_hours = divmod(hours, 24)
    return f"{days} d" + (f" {rest_hours} h" if rest_hours else "")


def describe_rate(rate: float | None) -> str:
    """`25 %`, `33.3 %`; `no data` for None."""
    if rate is None:
        return "no data"
    percent = round(rate * 100, 1)
    return f"{percent:g} %"
