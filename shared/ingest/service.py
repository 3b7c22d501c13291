"""Ingestion of registry events: decide, record, start exactly one release, supersede.

The durable instance id is the release id (service + digest), so the durable
backend itself refuses a second running instance. The ledger's digest claim says
who starts: its first delivery at once, a later one only when no instance exists
(a claim whose start was lost in a crash, or a claimer still on its way). Of the
deliveries whose start created the instance, the first to mark the claim started
is answered `started`, every other one `duplicate`: exactly one per image, however
slow the claimer and whatever a backend lets through.
A release this process already saw exist needs neither (`known.py`).
Before the claim the registry confirms the image (`image_check.py`): a digest it does not
hold is `rejected`, a registry that cannot answer raises `RegistryUnreachable` (nothing is
recorded or claimed; the sender, or the reconciler, tries again).
Every event is recorded with its outcome, whatever it is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.ledger.aio import AsyncLedger
from shared.ledger.records import EventRecord
from shared.registry.client import RegistryEndpoint
from shared.registry.errors import RegistryError, RegistryUnavailable
from shared.releases.plan import PREFLIGHT
from shared.text import one_line

from .decisions import Decision, decide, image_verdict, overwritten, supersedes
from .image_check import ClientRegistry, Registry, RegistryUnreachable
from .known import KNOWN_RELEASES, KnownReleases
from .payloads import RegistryEvent

log = logging.getLogger(__name__)
RELEASE_ORCHESTRATOR = "release"
PRODUCTION_VERSION_TTL = 30.0
_production_versions: dict[tuple[int, str], tuple[float, str | None]] = {}
SUPERSEDED_EVENT = "superseded"
# A running release is told too: the event waits for its next gate, where it then ends.
SUPERSEDABLE_STATES = ("Running", "WaitingForApproval")


class Durable(Protocol):
    """What ingestion needs of the Durable client (async, as the SDK's client is)."""

    scope: str  # which task hub: releases known to exist are remembered per hub

    async def exists(self, instance_id: str) -> bool: ...

    async def start(self, orchestrator: str, instance_id: str, payload: Any) -> bool: ...

    async def raise_event(self, instance_id: str, event: str, payload: Any) -> None: ...


@dataclass(frozen=True)
class EventOutcome:
    """What became of one event."""

    event_id: str
    outcome: str
    reason: str
    service: str | None = None
    release_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"eventId": self.event_id, "outcome": self.outcome, "reason": self.reason,
                "service": self.service, "releaseId": self.release_id}


class Ingestor:
    """Turns registry events into releases, given the policy, the ledger (its async side,
    `shared.ledger.aio.AsyncLedger`: no thread per call), Durable and the registry."""

    def __init__(self, policy: Any, ledger: AsyncLedger, durable: Durable,
                 known: KnownReleases = KNOWN_RELEASES,
                 registry: Registry | None = None) -> None:
        self.policy = policy
        self.ledger = ledger
        self.durable = durable
        self.known = known
        self.registry = registry or ClientRegistry()
        self._scope = (ledger.ledger.endpoint, ledger.ledger.prefix, durable.scope)

    async def ingest(self, event: RegistryEvent, received_at: datetime | None = None
                     ) -> EventOutcome:
        """Decide, confirm the image with the registry, record, start. Raises
        RegistryUnreachable when the registry cannot confirm the image."""
        received_at = received_at or datetime.now(UTC)
        decision = decide(event, self.policy)
        if decision.outcome == "start":
            decision = await self._older_than_production(event, decision)
        if decision.outcome != "start":
            return await self._record(event, received_at, decision.outcome, decision.reason,
                                      decision.service, None)
        service = self.policy.service(decision.service)
        release_id = decision.release_id
        assert release_id is not None and event.digest and event.tag
        digest, tag = event.digest, event.tag  # _confirm_image keeps both
        known = (*self._scope, release_id)
        if known in self.known:
            return await self._duplicate(event, received_at, service.name, release_id)
        event, refusal = await self._confirm_image(service, event)
        if refusal is not None:
            return await self._record(event, received_at, refusal.outcome, refusal.reason,
                                      service.name, None)
        claim = await self.ledger.claim(service.name, digest, release_id, tag, event.event_id)
        started, related, earlier = False, [], None
        # A fresh claim starts at once; a later delivery only when no instance exists yet.
        if claim is not None or not await self.durable.exists(release_id):
            # One read: this tag's earlier releases, and those a newer push may supersede.
            waiting = SUPERSEDABLE_STATES if service.supersede_waiting_at_gate else None
            related = await self.ledger.releases(service.name, state=waiting, version=tag)
            earlier = overwritten(related, tag, digest)
            # Its row there means another delivery started it, which may have ended since:
            # a start now would run it again over its history.
            if all(release.release_id != release_id for release in related):
                created = await self.durable.start(RELEASE_ORCHESTRATOR, release_id,
                                                   release_input(service, event, release_id,
                                                                 received_at, earlier))
                started = created and await self.ledger.mark_started(
                    service.name, digest, event.event_id, etag=claim)
        self.known.add(known)  # started now, or found: it exists either way
        if started:
            await self._supersede(service, tag, digest, release_id, related)
            reason = decision.reason
            if earlier:
                reason += (f"; tag {tag} was pushed before as {earlier['digest']}"
                           f" ({earlier['releaseId']}, {earlier['state']})")
            return await self._record(event, received_at, "started", reason, service.name,
                                      release_id)
        return await self._duplicate(event, received_at, service.name, release_id)

    async def _duplicate(self, event: RegistryEvent, received_at: datetime, service: str,
                         release_id: str) -> EventOutcome:
        return await self._record(event, received_at, "duplicate",
                                  f"release {release_id} already exists for {event.digest}",
                                  service, release_id)

    async def _confirm_image(self, service: Any, event: RegistryEvent
                             ) -> tuple[RegistryEvent, Decision | None]:
        """Ask the policy's registry about the pushed digest: the event with `tag_current`,
        and the refusal when the registry holds no runnable image there."""
        endpoint = RegistryEndpoint.from_dict(service.registry)
        assert event.digest and event.tag
        try:
            facts = await self.registry.image(endpoint, service.repository, event.digest,
                                              event.tag)
        except RegistryError as failure:
            # Unreachable is the registry's trouble; refused (401/403, ...) is configuration.
            level = logging.WARNING if isinstance(failure, RegistryUnavailable) else logging.ERROR
            log.log(level, "registry %s, repository %s: cannot confirm %s for event %s, so"
                    " the sender must retry: %s", endpoint.host, service.repository,
                    event.digest, event.event_id, failure)
            raise RegistryUnreachable(endpoint.host, service.repository, failure) from None
        refusal = image_verdict(facts, f"{endpoint.host}/{service.repository}", event.digest)
        return replace(event, tag_current=facts.tag_current), refusal

    async def _older_than_production(self, event: RegistryEvent,
                                     decision: Decision) -> Decision:
        service = self.policy.service(decision.service)
        if not service.ignore_older_than_production:
            return decision
        running_tag = await self._production_version(service)
        new, running = service.version_key(event.tag or ""), \
            service.version_key(running_tag or "")
        if new is not None and running is not None and new < running:
            return Decision("ignored", f"{event.tag} is older than {running_tag} in"
                                       f" {service.production.name}", service.name)
        return decision

    async def _production_version(self, service: Any) -> str | None:
        """The version in production, cached briefly: every delivery asks, it rarely changes."""
        key = (id(self.ledger), service.name)
        cached = _production_versions.get(key)
        if cached and time.monotonic() - cached[0] < PRODUCTION_VERSION_TTL:
            return cached[1]
        state = await self.ledger.environment_state(service.name, service.production.name)
        version = None
        if state.current is not None:
            release = await self.ledger.get_release(state.current.release_id,
                                                    service=service.name)
            version = release.version if release else None
        _production_versions[key] = (time.monotonic(), version)
        return version

    async def _supersede(self, service: Any, tag: str, digest: str, release_id: str,
                         related: list[Any]) -> None:
        if not service.supersede_waiting_at_gate:
            return
        for release in related:
            if release.state in SUPERSEDABLE_STATES and release.release_id != release_id \
                    and supersedes(tag, release.version, service.version_key):
                try:
                    await self.durable.raise_event(release.release_id, SUPERSEDED_EVENT,
                                                   {"by": release_id, "version": tag,
                                                    "digest": digest})
                except Exception as failure:  # it ended meanwhile: nothing left to supersede
                    log.info("release %s not superseded: %s", release.release_id,
                             one_line(failure, 200))

    async def _record(self, event: RegistryEvent, received_at: datetime, outcome: str,
                      reason: str, service: str | None, release_id: str | None) -> EventOutcome:
        await self.ledger.record_event(EventRecord(
            event_id=event.event_id, received_at=received_at, source=event.source,
            action=event.action, registry=event.registry, repository=event.repository,
            tag=event.tag, digest=event.digest, service=service, outcome=outcome,
            reason=reason, release_id=release_id, tag_current=event.tag_current))
        return EventOutcome(event.event_id, outcome, reason, service, release_id)


def release_input(service: Any, event: RegistryEvent, release_id: str,
                  received_at: datetime, overwrites: dict[str, str] | None = None
                  ) -> dict[str, Any]:
    """The release orchestration's input: the policy snapshot and the image, by digest in
    the policy's registry (and who pushed it, as `pushedBy`, when the registry said;
    whether the tag still named the digest when the registry was asked, as `tagCurrent`;
    the earlier release of the same tag at another digest, as `overwrites`, when there
    was one), and the checks to run before its first environment
    (`preflight`)."""
    host = RegistryEndpoint.from_dict(service.registry).host
    image: dict[str, object] = {
        "registry": host, "repository": event.repository, "tag": event.tag,
        "digest": event.digest, "reference": f"{host}/{event.repository}@{event.digest}"}
    if event.actor:
        image["pushedBy"] = event.actor
    if event.tag_current is not None:
        image["tagCurrent"] = event.tag_current
    if overwrites:
        image["overwrites"] = overwrites
    return {"releaseId": release_id, "policy": service.snapshot(), "image": image,
            "trigger": {"eventId": event.event_id, "source": event.source,
                        "receivedAt": received_at.isoformat()},
            "preflight": list(PREFLIGHT)}
