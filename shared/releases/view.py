"""One release (or operation) as the releases API and the dashboard show it.

The ledger's row joined with the live Durable status of its orchestration, and a timeline
of what happened (registry events, orchestration steps, stage outcomes), oldest first, with
its analysis rounds and what it changes at each gate it reached (`changes`). An
orchestration whose first ledger write has not landed yet is shown from its custom status.
Reads through the protocols below; shows nothing secret (the input, which holds the policy
snapshot, is never read). Does not list releases (the ledger does) or change anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from shared.instances import Instance
from shared.ledger.records import EventRecord, ReleaseRecord
from shared.releases.admission import NOT_FOUND, Refusal
from shared.releases.operations import ORCHESTRATORS, operation_kind
from shared.releases.retry import ACTIVE_RUNTIMES
from shared.releases.status import ReleaseStatus
from shared.text import one_line
from shared.timefmt import as_utc

SERVICE_EVENTS = 1_000      # events of one service read for a release's timeline
SHOWN_ORCHESTRATIONS = frozenset({"release", *ORCHESTRATORS.values()})
RETRIED = "retried"  # the history step of a retry (orchestrations/release.py Journal)


class Instances(Protocol):
    """What the view reads of the Durable client (async, as the SDK's client is)."""

    async def status(self, instance_id: str, show_input: bool = False) -> Instance | None: ...


class Rows(Protocol):
    """What the view reads of the ledger (blocking calls: run in a thread)."""

    def get_release(self, release_id: str, *,
                    service: str | None = None) -> ReleaseRecord | None: ...

    def events(self, service: str | None = None, *, limit: int = ...) -> list[EventRecord]: ...


class Round(Protocol):
    """An analysis round the ledger keeps (shared/ledger/evidence.py `RecordedRound`)."""

    def to_dict(self) -> dict[str, Any]: ...


class ReleaseViews:
    """The ledger's row of a release joined with Durable's status of its orchestration."""

    def __init__(self, ledger: Rows, durable: Instances,
                 evidence: Callable[[str], Sequence[Round]] | None = None,
                 changes: Callable[[str], Mapping[str, Any]] | None = None) -> None:
        self.ledger = ledger
        self.durable = durable
        self.evidence = evidence
        self.changes = changes  # `ChangesBook.changes`: what the release changes per gate

    async def show(self, release_id: str, link: Callable[[str], str]) -> dict[str, Any]:
        """The release or operation with its `link`, stages, timeline and live status;
        Refusal(not-found) when neither the ledger nor Durable knows it."""
        row = await asyncio.to_thread(self.ledger.get_release, release_id)
        status = await self.durable.status(release_id)
        if status is not None and status.name not in SHOWN_ORCHESTRATIONS:
            status = None
        if row is None and status is None:
            raise unknown(release_id)
        events = []
        if row is not None:
            events = [e for e in await asyncio.to_thread(self.ledger.events, row.service,
                                                         limit=SERVICE_EVENTS)
                      if e.release_id == release_id]
        custom = status.custom_status if status is not None else None
        journal = ReleaseStatus.from_dict(custom)
        shown = row.to_dict() if row is not None else pending_row(release_id, status, journal)
        rounds = await asyncio.to_thread(self.evidence, release_id) if self.evidence else []
        analysis = {"analysis": [r.to_dict() for r in rounds]} if rounds else {}
        kept = await asyncio.to_thread(self.changes, release_id) if self.changes else {}
        changes = {"changes": dict(kept)} if kept else {}
        return {**shown, "kind": operation_kind(release_id), "statusUri": link(release_id),
                **helm_view(journal), **analysis, **changes,
                "timeline": timeline(row, journal, events),
                "durable": durable_view(status, custom)}


def unknown(release_id: str) -> Refusal:
    """The refusal for an id nothing knows (or that no release or operation could have)."""
    return Refusal(NOT_FOUND, f"no release or operation {one_line(release_id, 300)!r}")


def summary(row: ReleaseRecord, link: Callable[[str], str]) -> dict[str, Any]:
    """A list entry: the row without its stages, its kind and its link."""
    shown = row.to_dict()
    shown.pop("stages")
    return {**shown, "kind": operation_kind(row.release_id), "statusUri": link(row.release_id)}


def pending_row(release_id: str, status: Any, journal: ReleaseStatus) -> dict[str, Any]:
    """An instance whose first ledger write has not landed yet, from its custom status."""
    return {"releaseId": release_id, "service": journal.service,
            "version": journal.version, "digest": journal.digest,
            "state": "Running" if status.runtime in ACTIVE_RUNTIMES else None,
            "createdAt": _iso(status.created), "updatedAt": _iso(status.updated),
            "environment": journal.environment, "step": journal.step,
            "reason": journal.reason, "stages": {}}


def helm_view(journal: ReleaseStatus) -> dict[str, Any]:
    """`helm`: per Helm environment the chart, version, digest and revision the release put
    there; no key at all when the release deployed no Helm target."""
    if not journal.helm:
        return {}
    return {"helm": {environment: deployed.to_dict()
                     for environment, deployed in journal.helm.items()}}


def timeline(row: ReleaseRecord | None, journal: ReleaseStatus,
             events: list[EventRecord]) -> list[dict[str, Any]]:
    """What happened, oldest first: registry events, orchestration steps, stage outcomes."""
    entries: list[tuple[datetime, dict[str, Any]]] = []

    def add(at: Any, source: str, environment: str | None, what: str) -> None:
        moment = as_utc(at)
        if moment is not None:
            entries.append((moment, {"at": moment.isoformat(), "source": source,
                                     "environment": environment, "what": what}))

    for event in events:
        what = f"{event.action} {event.repository}:{event.tag} via {event.source}: " \
               f"{event.outcome}" + (f" ({event.reason})" if event.reason else "")
        if event.deliveries > 1:  # the same event id again: counted on its row, outcome kept
            what += f" (delivered {event.deliveries} times)"
        add(event.received_at, "registry", None, what)
    for step in journal.history:
        what = str(step.step)
        if what == RETRIED and step.detail:  # who, when and why
            what = step.detail
        add(step.at, "orchestration", step.environment, what)
    for environment, stage in (row.stages if row is not None else {}).items():
        add(stage.started, "ledger", environment, "stage started")
        if stage.finished is not None:
            add(stage.finished, "ledger", environment,
                f"stage {stage.state}" + (f": {stage.detail}" if stage.detail else ""))
    entries.sort(key=lambda entry: entry[0])
    return [entry for _, entry in entries]


def durable_view(status: Any, custom: Any) -> dict[str, Any] | None:
    """Durable's status as shown: name, runtime status, custom status, output, times."""
    if status is None:
        return None
    return {"name": status.name, "runtimeStatus": status.runtime or None,
            "customStatus": custom, "output": status.output,
            "createdTime": _iso(status.created), "lastUpdatedTime": _iso(status.updated)}


def _iso(value: Any) -> str | None:
    moment = as_utc(value)
    return moment.isoformat() if moment is not None else None
