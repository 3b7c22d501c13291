"""The reconciler: find pushes the webhooks never delivered and start their releases.

ACR webhooks are delivered once and never retried, so on a schedule the tags of
every configured repository are compared with the digests the ledger has seen.
The first run for a service takes a baseline (what was there before the product
watched it is recorded, not released). After that, the newest missed version
starts a release like a delivered push; older missed ones are recorded as
superseded by it. Work per run is bounded.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.ledger.records import EventRecord
from shared.registry.client import RegistryClient, RegistryEndpoint
from shared.registry.errors import ImageNotFound, RegistryError

from .decisions import release_id
from .image_check import RegistryUnreachable
from .payloads import RegistryEvent
from .service import EventOutcome, Ingestor

BASELINE = "baseline"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    """What one run did for one service."""

    service: str
    tags: int
    baseline: int = 0
    started: list[str] | None = None
    skipped: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "tags": self.tags, "baseline": self.baseline,
                "started": self.started or [], "skipped": self.skipped, "error": self.error}


async def reconcile(policy: Any, ingestor: Ingestor, registries: Any, *,
                    max_images: int = 20) -> list[ReconcileReport]:
    """One pass over every service of the policy."""
    reports = []
    for service in policy.services.values():
        client = registries(RegistryEndpoint.from_dict(service.registry))
        try:
            reports.append(await reconcile_service(service, client, ingestor,
                                                   max_images=max_images))
        except (RegistryError, RegistryUnreachable) as failure:  # the others still run
            log.warning("reconciler: service %s skipped this run: %s", service.name, failure)
            reports.append(ReconcileReport(service.name, 0, error=str(failure)))
    return reports


async def reconcile_service(service: Any, client: RegistryClient, ingestor: Ingestor, *,
                            max_images: int) -> ReconcileReport:
    try:
        tags = await asyncio.to_thread(client.list_tags, service.repository)
    except ImageNotFound:  # nothing pushed to the repository yet
        tags = []
    wanted = sorted((t for t in tags if service.accepts_tag(t)[0]),
                    key=lambda t: service.version_key(t) or (), reverse=True)
    seen = await ingestor.ledger.seen_digests(service.name)
    newest = wanted[:max_images]
    digests = [(tag, await asyncio.to_thread(client.manifest_digest, service.repository, tag))
               for tag in newest]
    missed = [(tag, digest) for tag, digest in digests if digest and digest not in seen]
    if not seen:
        for tag, digest in missed:
            await _baseline(ingestor, service, client, tag, digest)
        return ReconcileReport(service.name, len(tags), baseline=len(missed),
                               skipped=len(wanted) - len(newest))
    if not missed:
        return ReconcileReport(service.name, len(tags), started=[])
    (tag, digest), older = missed[0], missed[1:]
    # Ingestion reads the tag's manifest once more: one GET says it is this image and what.
    outcome = await ingestor.ingest(_event(service, client, tag, digest))
    for old_tag, old_digest in older:
        await _superseded(ingestor, service, client, old_tag, old_digest, tag)
    started = [outcome.release_id or ""] if outcome.outcome == "started" else []
    return ReconcileReport(service.name, len(tags), started=started,
                           skipped=len(wanted) - len(newest))


def _event(service: Any, client: RegistryClient, tag: str, digest: str) -> RegistryEvent:
    return RegistryEvent(event_id=f"reconciler-{service.name}-{digest[7:23]}-{tag}",
                         source="reconciler", action="push", registry=client.endpoint.host,
                         repository=service.repository, tag=tag, digest=digest,
                         timestamp=datetime.now(UTC))


async def _baseline(ingestor: Ingestor, service: Any, client: RegistryClient, tag: str,
                    digest: str) -> EventOutcome:
    event = _event(service, client, tag, digest)
    await ingestor.ledger.claim_digest(service.name, digest, BASELINE, tag, event.event_id)
    return await _record(ingestor, event, service.name, "present before the product watched"
                                                        " this repository (baseline)")


async def _superseded(ingestor: Ingestor, service: Any, client: RegistryClient, tag: str,
                      digest: str, newer: str) -> EventOutcome:
    event = _event(service, client, tag, digest)
    await ingestor.ledger.claim_digest(service.name, digest, release_id(service.name, digest),
                                       tag, event.event_id)
    return await _record(ingestor, event, service.name,
                         f"missed push, superseded by the newer missed version {newer}")


async def _record(ingestor: Ingestor, event: RegistryEvent, service: str,
                  reason: str) -> EventOutcome:
    await ingestor.ledger.record_event(EventRecord(
        event_id=event.event_id, received_at=event.timestamp or datetime.now(UTC),
        source=event.source, action=event.action, registry=event.registry,
        repository=event.repository, tag=event.tag, digest=event.digest, service=service,
        outcome="ignored", reason=reason))
    return EventOutcome(event.event_id, "ignored", reason, service)
