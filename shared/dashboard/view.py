"""The dashboard's view models, built from ledger records and Durable custom statuses.

Pure: the caller reads the policy, the ledger and Durable and passes `now`. Every view
picks its fields one by one (never a whole custom status, input or policy), so nothing
secret reaches a page even if those grow; links are kept only when they are http(s).
Does not read anything and does not render: see `render.py` and `triggers/dashboard.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from shared.ledger.records import ACTIVE_STATES, DeployedChart, EnvironmentState, ReleaseRecord
from shared.releases.changes import ReleaseChanges
from shared.releases.operations import operation_kind
from shared.releases.rounds import AnalysisRound, by_environment, rounds_from
from shared.releases.status import HelmDeployed, HistoryEntry, ReleaseStatus
from shared.releases.waiting import ApprovalWait, FailureWait
from shared.text import one_line
from shared.timefmt import as_utc

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEFAULT_REFRESH = 30
DASHBOARD_PATH = "/api/dashboard"
DIGEST_HEX = 12
MAX_TEXT = 300
ROUNDS_SHOWN = 20  # an environment's latest rounds on a release's page


# Small pure helpers ----------------------------------------------------------------------

def short_digest(digest: str | None) -> str:
    """`sha256:` and the first 12 hex digits, enough to tell images apart on a page."""
    if not digest:
        return ""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:DIGEST_HEX]}" if hex_part else digest[:DIGEST_HEX]


def span(seconds: float) -> str:
    """A duration in words read at a glance: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.

    Exact below 10 minutes, then rounded to the smaller unit shown (71 h 59 min is `3 d`).
    """
    whole = max(0, int(round(seconds)))
    if whole < 60:
        return f"{whole} s"
    if whole < 600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    minutes = round(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(round(minutes / 60), 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def relative(moment: datetime | None, now: datetime) -> str:
    """`in 2 h 5 min`, `3 min ago` or `now`; empty for an unknown moment."""
    if moment is None:
        return ""
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    return f"in {span(seconds)}" if seconds > 0 else f"{span(-seconds)} ago"


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """A value as one line of at most `limit` characters (empty for None)."""
    if value is None:
        return ""
    return one_line(value, limit, cut="…")


def safe_link(value: Any) -> str | None:
    """An absolute http(s) URL as given, else None (no `javascript:` in an href)."""
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def details_link(release_id: str, base: str = DASHBOARD_PATH) -> str:
    """The dashboard's page of one release or operation."""
    return f"{base}/releases/{quote(release_id, safe=':')}"


def plain(value: Any) -> Any:
    """A view as JSON-ready data: camelCase keys, ISO times, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_fields(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    return value


def plain_fields(view: DataclassInstance) -> dict[str, Any]:
    """A dataclass view's fields as JSON-ready data, keyed in camelCase."""
    return {_camel(f.name): plain(getattr(view, f.name)) for f in dataclasses.fields(view)}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


# Views -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HelmView:
    """A Helm target's chart and Helm revision: the digest short, `full_digest` for a title."""

    chart: str
    version: str
    digest: str
    full_digest: str
    revision: int | None


def helm_view(chart: str | None, version: str | None, digest: str | None,
              revision: int | None) -> HelmView | None:
    """What a page shows of a Helm deployment; None when there is nothing (not Helm)."""
    if not (chart or version or digest or revision):
        return None
    full = text(digest, 100)
    return HelmView(chart=text(chart, 128), version=text(version, 128),
                    digest=short_digest(full), full_digest=full, revision=revision)


def chart_of(chart: DeployedChart | None, revision: int | None) -> HelmView | None:
    """A ledger deployment's chart and revision as shown."""
    return helm_view(chart.name if chart else None, chart.version if chart else None,
                     chart.digest if chart else None, revision)


def deployed_chart(deployed: HelmDeployed) -> HelmView | None:
    """A release status's `helm` entry as shown."""
    return helm_view(deployed.chart, deployed.version, deployed.digest, deployed.revision)


@dataclass(frozen=True)
class DeployedView:
    """A release running (or last good) in an environment; `helm` for a Helm target."""

    release_id: str
    version: str
    digest: str
    since: datetime
    since_text: str
    link: str
    helm: HelmView | None = None


@dataclass(frozen=True)
class EnvironmentCell:
    """One service in one environment: what runs there and the last verified release."""

    environment: str
    in_policy: bool
    current: DeployedView | None
    last_good: DeployedView | None

    @property
    def good(self) -> bool:
        """What runs is the last verified release."""
        return (self.current is not None and self.last_good is not None
                and self.current.release_id == self.last_good.release_id)


@dataclass(frozen=True)
class ServiceRow:
    """A service and its environments, in the policy's order."""

    service: str
    in_policy: bool
    cells: tuple[EnvironmentCell, ...]

    def cell(self, environment: str) -> EnvironmentCell | None:
        return next((c for c in self.cells if c.environment == environment), None)


@dataclass(frozen=True)
class Approval:
    by: str
    at: str


@dataclass(frozen=True)
class ApprovalLink:
    """An approval page link; `approver` is the person a token-mode link is for."""

    approver: str | None
    url: str


@dataclass(frozen=True)
class WaitingRow:
    """A release waiting at a gate: where, until when, who has approved, where to decide."""

    release_id: str
    service: str
    version: str
    digest: str
    environment: str
    waiting_since: datetime | None
    deadline: datetime | None
    deadline_text: str
    overdue: bool
    reminders: int | None
    required_approvals: int | None
    approvals: tuple[Approval, ...]
    links: tuple[ApprovalLink, ...]
    live: bool
    link: str


@dataclass(frozen=True)
class PausedRow:
    """A failed deployment waiting for a person to roll it back or keep it."""

    release_id: str
    service: str
    version: str
    digest: str
    environment: str
    failure: str
    deadline: datetime | None
    deadline_text: str
    overdue: bool
    on_deadline: str
    command: str
    link: str


@dataclass(frozen=True)
class RecentRow:
    """A release or operation from the ledger, with how long it took (or has taken so far)."""

    release_id: str
    kind: str
    service: str
    version: str
    digest: str
    state: str
    active: bool
    environment: str
    step: str
    reason: str
    created_at: datetime
    created_text: str
    updated_at: datetime
    duration_seconds: int
    duration_text: str
    link: str


@dataclass(frozen=True)
class Overview:
    """The whole dashboard page."""

    generated_at: datetime
    refresh: int
    messages: tuple[str, ...]
    environments: tuple[str, ...]
    services: tuple[ServiceRow, ...]
    waiting: tuple[WaitingRow, ...]
    recent: tuple[RecentRow, ...]
    paused: tuple[PausedRow, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class StageRow:
    environment: str
    state: str
    started: datetime | None
    finished: datetime | None
    duration_text: str
    detail: str


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    source: str
    environment: str
    what: str


@dataclass(frozen=True)
class EnvironmentAnalysis:
    """An environment's analysis rounds on a release's page: the latest `ROUNDS_SHOWN`,
    and how many earlier ones are not shown."""

    environment: str
    rounds: tuple[AnalysisRound, ...]
    earlier: int = 0


def analysis_view(rounds: Sequence[AnalysisRound]) -> tuple[EnvironmentAnalysis, ...]:
    """Each environment's latest rounds (none at all when nothing was analysed)."""
    return tuple(EnvironmentAnalysis(environment, found[-ROUNDS_SHOWN:],
                                     max(0, len(found) - ROUNDS_SHOWN))
                 for environment, found in by_environment(rounds))


@dataclass(frozen=True)
class ReleaseDetail:
    """One release's (or operation's) page: its row, stages, gate and timeline."""

    generated_at: datetime
    refresh: int
    release_id: str
    kind: str
    service: str
    version: str
    digest: str
    state: str
    active: bool
    runtime_status: str
    environment: str
    step: str
    reason: str
    pushed_by: str
    created_at: datetime | None
    updated_at: datetime | None
    duration_text: str
    evidence: tuple[tuple[str, str], ...]
    stages: tuple[StageRow, ...]
    waiting: WaitingRow | None
    timeline: tuple[TimelineEntry, ...]
    overview_link: str
    paused: PausedRow | None = None
    helm: tuple[tuple[str, HelmView], ...] = ()  # per environment, Helm targets only
    analysis: tuple[EnvironmentAnalysis, ...] = ()
    changes: tuple[ReleaseChanges, ...] = ()  # per gate the release reached, as read there

    def to_dict(self) -> dict[str, Any]:
        data = plain_fields(self)
        data["evidence"] = {environment: line for environment, line in self.evidence}
        data["helm"] = {environment: plain(shown) for environment, shown in self.helm}
        data["changes"] = {c.environment: c.to_dict() for c in self.changes}
        return data


# Building the overview -------------------------------------------------------------------

def build_overview(
    *, now: datetime, policy_services: Mapping[str, Sequence[str]] | None,
    environment_states: Mapping[str, Sequence[EnvironmentState]],
    recent: Sequence[ReleaseRecord], waiting: Sequence[ReleaseRecord],
    statuses: Mapping[str, Any], known: Mapping[str, ReleaseRecord],
    refresh: int = DEFAULT_REFRESH, messages: Sequence[str] = (), base: str = DASHBOARD_PATH,
    paused: Sequence[ReleaseRecord] = (),
) -> Overview:
    """The page from what the trigger read.

    `policy_services` maps each service of the policy to its environments in order (None
    when the policy could not be read: services then come from the ledger); `statuses`
    holds the Durable custom status of waiting and paused releases; `known` has releases
    by id, for the versions of what runs where; `paused` are failed deployments waiting
    for a person.
    """
    now = as_utc(now) or now
    services = _service_rows(now, policy_services, environment_states, recent, waiting,
                             known, base)
    columns: list[str] = []
    for row in services:
        columns.extend(c.environment for c in row.cells if c.environment not in columns)
    return Overview(
        generated_at=now, refresh=refresh, messages=tuple(text(m, 1000) for m in messages),
        environments=tuple(columns), services=services,
        waiting=tuple(waiting_row(r, ReleaseStatus.from_dict(statuses.get(r.release_id)), now,
                                  base) for r in waiting),
        recent=tuple(recent_row(r, now, base) for r in recent),
        paused=tuple(paused_row(r, ReleaseStatus.from_dict(statuses.get(r.release_id)), now,
                                base) for r in paused))


def _service_rows(now: datetime, policy_services: Mapping[str, Sequence[str]] | None,
                  environment_states: Mapping[str, Sequence[EnvironmentState]],
                  recent: Sequence[ReleaseRecord], waiting: Sequence[ReleaseRecord],
                  known: Mapping[str, ReleaseRecord], base: str) -> tuple[ServiceRow, ...]:
    configured = dict(policy_services or {})
    names = list(configured)
    for name in [*environment_states, *(r.service for r in [*waiting, *recent])]:
        if name not in names:
            names.append(name)
    rows = []
    for name in names:
        states = {s.environment: s for s in environment_states.get(name, ())}
        environments = list(configured.get(name, ()))
        environments += [e for e in states if e not in environments]
        cells = tuple(
            EnvironmentCell(environment=e, in_policy=e in configured.get(name, ()),
                            current=deployed_view(states[e].current if e in states else None,
                                              known, now, base),
                            last_good=deployed_view(states[e].last_good if e in states else None,
                                                known, now, base))
            for e in environments)
        rows.append(ServiceRow(service=name, in_policy=name in configured, cells=cells))
    return tuple(rows)


def deployed_view(deployment: Any, known: Mapping[str, ReleaseRecord], now: datetime,
              base: str) -> DeployedView | None:
    if deployment is None:
        return None
    record = known.get(deployment.release_id)
    since = as_utc(deployment.since) or now
    return DeployedView(release_id=deployment.release_id,
                        version=record.version if record is not None else "",
                        digest=short_digest(deployment.digest), since=since,
                        since_text=_since(since, now),
                        link=details_link(deployment.release_id, base),
                        helm=chart_of(deployment.chart, deployment.revision))


def _since(moment_: datetime, now: datetime) -> str:
    said = relative(moment_, now)
    return "just now" if said == "now" else said


def recent_row(record: ReleaseRecord, now: datetime, base: str = DASHBOARD_PATH) -> RecentRow:
    """A ledger row with its duration: until its last update when final, until now if not."""
    active = record.state in ACTIVE_STATES
    created, updated = as_utc(record.created_at) or now, as_utc(record.updated_at) or now
    seconds = max(0, int(((now if active else updated) - created).total_seconds()))
    return RecentRow(
        release_id=record.release_id, kind=operation_kind(record.release_id),
        service=record.service, version=record.version, digest=short_digest(record.digest),
        state=record.state, active=active, environment=record.environment or "",
        step=text(record.step, 80), reason=text(record.reason), created_at=created,
        created_text=relative(created, now), updated_at=updated, duration_seconds=seconds,
        duration_text=span(seconds) + (" so far" if active else ""),
        link=details_link(record.release_id, base))


@dataclass(frozen=True)
class RowLike:
    """The fields of a ledger row that `waiting_row` and `paused_row` read (from the API's
    JSON view)."""

    release_id: str
    service: str
    version: str
    digest: str
    environment: str | None
    updated_at: Any
    reason: str | None = None


def waiting_row(record: ReleaseRecord | RowLike, status: ReleaseStatus, now: datetime,
                base: str = DASHBOARD_PATH) -> WaitingRow:
    """A release at a gate, from its ledger row and its live custom status (empty when
    unknown)."""
    wait = status.waiting_for
    waiting = wait if isinstance(wait, ApprovalWait) else ApprovalWait(None, None, None)
    environment = text(waiting.environment or record.environment or "", 80)
    deadline = as_utc(waiting.deadline)
    return WaitingRow(
        release_id=record.release_id, service=record.service, version=record.version,
        digest=short_digest(record.digest), environment=environment,
        waiting_since=_gate_opened(status.history, environment) or as_utc(
            record.updated_at),
        deadline=deadline, deadline_text=relative(deadline, now),
        overdue=deadline is not None and deadline <= now,
        reminders=waiting.reminders, required_approvals=waiting.required_approvals,
        approvals=tuple(Approval(by=text(a.by, 200), at=text(a.at, 40))
                        for a in waiting.counted),
        links=approval_links(waiting), live=wait is waiting,
        link=details_link(record.release_id, base))


def paused_row(record: ReleaseRecord | RowLike, status: ReleaseStatus, now: datetime,
               base: str = DASHBOARD_PATH) -> PausedRow:
    """A failed deployment waiting for a person, from its ledger row and live custom status."""
    wait = status.waiting_for
    waiting = wait if isinstance(wait, FailureWait) else FailureWait(None, None, None)
    environment = text(waiting.environment or record.environment or "", 80)
    deadline = as_utc(waiting.deadline)
    return PausedRow(
        release_id=record.release_id, service=record.service, version=record.version,
        digest=short_digest(record.digest), environment=environment,
        failure=text(waiting.failure or record.reason),
        deadline=deadline, deadline_text=relative(deadline, now),
        overdue=deadline is not None and deadline <= now,
        on_deadline=text(waiting.on_deadline, 20),
        command=f"releasectl resolve {record.release_id} -e {environment} --rollback|--keep"
                " -r REASON",
        link=details_link(record.release_id, base))


def approval_links(waiting: ApprovalWait) -> tuple[ApprovalLink, ...]:
    """The gate's approval page links (`approvalPage`, then one per approver), http(s) only."""
    links = []
    page = safe_link(waiting.approval_page)
    if page is not None:
        links.append(ApprovalLink(approver=None, url=page))
    for entry in waiting.links:
        if (url := safe_link(entry.url)) is not None:
            links.append(ApprovalLink(approver=text(entry.approver, 200) or None, url=url))
    return tuple(links)


def _gate_opened(history: Sequence[HistoryEntry], environment: str) -> datetime | None:
    """When the gate was first reached: the first `approval` step of that environment."""
    for entry in history:
        if entry.step == "approval" and entry.environment == environment:
            return as_utc(entry.at)
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# Building one release's page -------------------------------------------------------------

def build_release_detail(shown: Mapping[str, Any], *, now: datetime,
                         refresh: int = DEFAULT_REFRESH,
                         base: str = DASHBOARD_PATH) -> ReleaseDetail:
    """The release page from `GET /api/releases/{id}`'s view (row, timeline, Durable status)."""
    now = as_utc(now) or now
    durable = _mapping(shown.get("durable"))
    status = ReleaseStatus.from_dict(durable.get("customStatus"))
    runtime = text(durable.get("runtimeStatus"), 40)
    state = text(shown.get("state"), 40)
    active = state in ACTIVE_STATES
    created, updated = as_utc(shown.get("createdAt")), as_utc(shown.get("updatedAt"))
    duration = ""
    if created is not None:
        end = now if active else (updated or now)
        duration = span((end - created).total_seconds()) + (" so far" if active else "")
    release_id = text(shown.get("releaseId"), 300)
    waiting = paused = None
    waits = status.waiting_for
    if waits is not None and runtime in ("Running", "Pending", ""):
        record_like = RowLike(release_id, text(shown.get("service"), 80),
                               text(shown.get("version"), 128), text(shown.get("digest"), 100),
                               shown.get("environment"), shown.get("updatedAt"),
                               shown.get("reason"))
        if isinstance(waits, FailureWait):
            paused = paused_row(record_like, status, now, base)
        elif isinstance(waits, ApprovalWait):
            waiting = waiting_row(record_like, status, now, base)
    return ReleaseDetail(
        generated_at=now, refresh=refresh, release_id=release_id,
        kind=text(shown.get("kind"), 20) or operation_kind(release_id),
        service=text(shown.get("service"), 80), version=text(shown.get("version"), 128),
        digest=text(shown.get("digest"), 100), state=state, active=active,
        runtime_status=runtime, environment=text(shown.get("environment"), 80),
        step=text(shown.get("step"), 80), reason=text(shown.get("reason"), 1000),
        pushed_by=text(status.pushed_by, 200), created_at=created, updated_at=updated,
        duration_text=duration,
        evidence=tuple((text(env, 80), text(line, 500))
                       for env, line in status.evidence.items()),
        stages=tuple(_stage_row(env, stage) for env, stage in (
            shown.get("stages") or {}).items() if isinstance(stage, Mapping)),
        waiting=waiting, paused=paused,
        helm=tuple((text(env, 80), chart) for env, deployed in status.helm.items()
                   if (chart := deployed_chart(deployed)) is not None),
        analysis=analysis_view(rounds_from(shown.get("analysis"))),
        changes=changes_view(shown.get("changes")),
        timeline=tuple(entry for entry in (_timeline_entry(e) for e in _list(
            shown.get("timeline"))) if entry is not None),
        overview_link=base)


def changes_view(kept: Any) -> tuple[ReleaseChanges, ...]:
    """What the release changes at each gate it reached (the releases API's `changes`)."""
    if not isinstance(kept, Mapping):
        return ()
    found = (ReleaseChanges.from_dict(data) for data in kept.values())
    return tuple(c for c in found if c is not None)


def _stage_row(environment: str, stage: Mapping[str, Any]) -> StageRow:
    started, finished = as_utc(stage.get("started")), as_utc(stage.get("finished"))
    duration = span((finished - started).total_seconds()) if started and finished else ""
    return StageRow(environment=text(environment, 80), state=text(stage.get("state"), 40),
                    started=started, finished=finished, duration_text=duration,
                    detail=text(stage.get("detail"), 1000))


def _timeline_entry(entry: Any) -> TimelineEntry | None:
    if not isinstance(entry, Mapping) or (at := as_utc(entry.get("at"))) is None:
        return None
    return TimelineEntry(at=at, source=text(entry.get("source"), 40),
                         environment=text(entry.get("environment"), 80),
                         what=text(entry.get("what"), 1000))
