"""Exactly one `started` answer per image, and a redelivery never rewrites what started it.

The races are made deterministic at the `Durable` seam of `shared.ingest.service`: a backend
whose start can be held at a gate (the slow claimer), or one that lets a second start through.
The ledger is real (Azurite), the images real (pushed to the session's docker-registry); the
burst and the timeline go through HTTP to the app in devhost.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devhost.durable.clock import VirtualClock
from devhost.host import Host
from sandbox.azurite import Azurite
from sandbox.registry import LocalRegistry
from sandbox.registry_push import RegistryPusher
from sandbox.tls import TlsFiles
from shared.ingest.known import KnownReleases
from shared.ingest.payloads import RegistryEvent
from shared.ingest.service import EventOutcome, Ingestor
from shared.ledger import Ledger, ReleaseRecord
from shared.ledger.aio import AsyncLedger, close_clients
from shared.policy.loader import parse_policy

REPO = Path(__file__).resolve().parents[2]
TOKEN = "exactly-once-webhook-token"
ROUTE = "/api/registry/events"
SERVICE = "once"
IMAGES = 100
DELIVERIES_PER_IMAGE = 4
CONCURRENCY = 16


def policy_text(registry: LocalRegistry, tls: TlsFiles, repository: str) -> str:
    """One service on the session registry whose releases wait at a QA gate (no cluster)."""
    return f"""\
version: 1
registries:
  local: {{url: "{registry.endpoint}", auth: anonymous, caBundle: "{tls.ca}"}}
services:
  {SERVICE}:
    registry: local
    repository: {repository}
    supersede: {{waitingAtGate: false}}
    environments:
      - name: qa
        target:
          cluster: {{name: once-qa, kubeconfigSecret: qa-kubeconfig}}
          namespace: once
          deployment: once
          container: app
        gate: {{approvers: {{users: [ann@example.com]}}, deadline: 72h}}
"""


class GatedDurable:
    """Durable as ingestion sees it: one running instance per id, unless `lets_two_through`
    (a backend whose duplicate check is not atomic); a start can be held at a gate."""

    scope = "test-hub"

    def __init__(self, *, lets_two_through: bool = False) -> None:
        self.lets_two_through = lets_two_through
        self.instances: dict[str, list[str]] = {}  # release id -> event ids that created it
        self.starts: list[str] = []  # event ids whose delivery called start
        self._gates: dict[str, asyncio.Event] = {}
        self._entered: dict[str, asyncio.Event] = {}

    def hold(self, event_id: str) -> None:
        """The start of `event_id`'s delivery waits until `release`."""
        self._gates[event_id] = asyncio.Event()
        self._entered[event_id] = asyncio.Event()

    async def reached(self, event_id: str) -> None:
        await asyncio.wait_for(self._entered[event_id].wait(), 10)

    def release(self, event_id: str) -> None:
        self._gates[event_id].set()

    async def exists(self, instance_id: str) -> bool:
        return instance_id in self.instances

    async def start(self, orchestrator: str, instance_id: str, payload: Any) -> bool:
        event_id = payload["trigger"]["eventId"]
        self.starts.append(event_id)
        if event_id in self._gates:
            self._entered[event_id].set()
            await self._gates[event_id].wait()
        if instance_id in self.instances and not self.lets_two_through:
            return False
        self.instances.setdefault(instance_id, []).append(event_id)
        return True

    async def raise_event(self, instance_id: str, event: str, payload: Any) -> None:
        raise AssertionError(f"nothing is superseded here ({instance_id}, {event})")



@dataclass(frozen=True)
class PushedImage:
    """One image the registry now holds: `repository:tag` at `digest`."""

    repository: str
    tag: str
    digest: str


def push_images(registry: LocalRegistry, repository: str, tags: list[str], *,
                seed: str) -> list[PushedImage]:
    """Real, tiny, distinct images pushed straight over the registry API."""
    digests = RegistryPusher.of(registry).push_images(repository, tags, seed)
    return [PushedImage(repository, tag, digest) for tag, digest in zip(tags, digests,
                                                                         strict=True)]


@dataclass
class Setup:
    ledger: Ledger
    images: list[PushedImage]
    registry_host: str
    policy: Any

    def ingestor(self, durable: GatedDurable) -> Ingestor:
        return Ingestor(self.policy, AsyncLedger.of(self.ledger), durable, KnownReleases())

    def push(self, event_id: str, image: PushedImage) -> RegistryEvent:
        return RegistryEvent(event_id=event_id, source="acr-webhook", action="push",
                             registry=self.registry_host, repository=image.repository,
                             tag=image.tag, digest=image.digest,
                             media_type="application/vnd.oci.image.manifest.v1+json",
                             timestamp=datetime.now(UTC))


@pytest.fixture
def setup(ledger: Ledger, registry: LocalRegistry, tls_files: TlsFiles) -> Setup:
    repository = "once-" + uuid.uuid4().hex[:10]
    images = push_images(registry, repository, ["v1.0.0", "v1.1.0"], seed=repository)
    return Setup(ledger, images, registry.host,
                 parse_policy(policy_text(registry, tls_files, repository)))


def run(test: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            await test()
        finally:
            await close_clients()

    asyncio.run(main())


def answers(outcomes: list[EventOutcome]) -> dict[str, str]:
    return {outcome.event_id: outcome.outcome for outcome in outcomes}


# The races, one at a time ----------------------------------------------------------------------

def test_a_slow_claimer_and_a_redelivery_give_one_started_answer(setup: Setup) -> None:
    """The claimer is held before its start; a second delivery finds no instance and starts
    it. Before the fix both answered `started`."""
    image = setup.images[0]
    durable = GatedDurable()

    async def test() -> None:
        ingestor = setup.ingestor(durable)
        durable.hold("claimer")
        claimer = asyncio.create_task(ingestor.ingest(setup.push("claimer", image)))
        await durable.reached("claimer")
        second = await ingestor.ingest(setup.push("second", image))
        durable.release("claimer")
        outcomes = [await claimer, second]
        assert answers(outcomes) == {"claimer": "duplicate", "second": "started"}
        assert outcomes[0].release_id == outcomes[1].release_id

    run(test)
    assert [events for events in durable.instances.values()] == [["second"]]
    rows = {event.event_id: event.outcome for event in setup.ledger.events(SERVICE)}
    assert rows == {"claimer": "duplicate", "second": "started"}
    claim = setup.ledger.digest_claim(SERVICE, image.digest)
    assert claim is not None and (claim.event_id, claim.started_by) == ("claimer", "second")


def test_a_backend_that_lets_a_second_start_through_still_gets_one_started_answer(
        setup: Setup) -> None:
    """Both starts report a new instance; the mark on the claim decides who answers."""
    image = setup.images[0]
    durable = GatedDurable(lets_two_through=True)

    async def test() -> None:
        ingestor = setup.ingestor(durable)
        durable.hold("claimer")
        claimer = asyncio.create_task(ingestor.ingest(setup.push("claimer", image)))
        await durable.reached("claimer")
        second = await ingestor.ingest(setup.push("second", image))
        durable.release("claimer")
        assert answers([await claimer, second]) == {"claimer": "duplicate", "second": "started"}

    run(test)
    assert list(durable.instances.values()) == [["second", "claimer"]]


def test_concurrent_deliveries_of_one_image_answer_started_once(setup: Setup) -> None:
    durable = GatedDurable()

    async def test() -> None:
        ingestor = setup.ingestor(durable)
        outcomes = await asyncio.gather(*(ingestor.ingest(setup.push(f"e{n}-{image.tag}", image))
                                          for n in range(8) for image in setup.images))
        for image in setup.images:
            said = [o.outcome for o in outcomes if o.event_id.endswith(image.tag)]
            assert sorted(said) == ["duplicate"] * 7 + ["started"], said

    run(test)
    assert len(durable.instances) == 2


def test_a_claim_whose_start_was_lost_is_repaired_by_the_next_delivery(setup: Setup) -> None:
    image = setup.images[1]
    durable = GatedDurable()
    release_id = f"{SERVICE}-{image.digest[7:23]}"
    assert setup.ledger.claim_digest(SERVICE, image.digest, release_id, image.tag, "crashed")

    async def test() -> None:
        ingestor = setup.ingestor(durable)
        repaired = await ingestor.ingest(setup.push("later", image))
        again = await ingestor.ingest(setup.push("later-still", image))
        assert answers([repaired, again]) == {"later": "started", "later-still": "duplicate"}

    run(test)
    assert durable.instances == {release_id: ["later"]}
    claim = setup.ledger.digest_claim(SERVICE, image.digest)
    assert claim is not None and (claim.event_id, claim.started_by) == ("crashed", "later")


def test_a_release_with_a_ledger_row_is_not_started_over(setup: Setup) -> None:
    """Its instance is gone (it ended and was purged): a later delivery must not run it again
    over its history."""
    image = setup.images[0]
    durable = GatedDurable()
    release_id = f"{SERVICE}-{image.digest[7:23]}"
    setup.ledger.claim_digest(SERVICE, image.digest, release_id, image.tag, "first")
    ended = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    setup.ledger.upsert_release(ReleaseRecord(release_id, SERVICE, image.tag, image.digest,
                                              "Failed", ended, ended))

    async def test() -> None:
        outcome = await setup.ingestor(durable).ingest(setup.push("late", image))
        assert (outcome.outcome, outcome.release_id) == ("duplicate", release_id)

    run(test)
    assert durable.starts == [] and durable.instances == {}


# Through HTTP ----------------------------------------------------------------------------------

class Stack:
    """The app in devhost, its ledger on Azurite, images in the session registry."""

    def __init__(self, host: Host, ledger: Ledger, http: aiohttp.ClientSession,
                 registry_host: str) -> None:
        self.host, self.ledger, self.http = host, ledger, http
        self.registry_host = registry_host

    def body(self, event_id: str, image: PushedImage) -> str:
        return json.dumps({"id": event_id, "timestamp": "2026-11-22T04:10:12Z", "action": "push",
                           "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                      "digest": image.digest, "repository": image.repository,
                                      "tag": image.tag},
                           "request": {"host": self.registry_host}})

    async def post(self, body: str) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.host.base_url + ROUTE, data=body.encode(),
                                  headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            return response.status, await response.json()

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.host.base_url + path) as response:
            return response.status, await response.json()


@pytest.fixture
def serve(tmp_path: Path, azurite: Azurite, registry: LocalRegistry, tls_files: TlsFiles,
          monkeypatch: pytest.MonkeyPatch
          ) -> Callable[[int, Callable[[Stack, list[PushedImage]], Awaitable[None]]], None]:
    def start(images: int,
              scenario: Callable[[Stack, list[PushedImage]], Awaitable[None]]) -> None:
        repository = "once-" + uuid.uuid4().hex[:10]
        pushed = push_images(registry, repository, [f"v3.{n}.0" for n in range(images)],
                             seed=repository)
        prefix = "x" + uuid.uuid4().hex[:10]
        (tmp_path / "policy.yaml").write_text(policy_text(registry, tls_files, repository))
        for name, value in {"AzureWebJobsStorage": azurite.connection_string,
                            "LEDGER_TABLE_PREFIX": prefix,
                            "RELEASE_POLICY_FILE": str(tmp_path / "policy.yaml"),
                            "REGISTRY_WEBHOOK_TOKEN": TOKEN,
                            "APPROVAL_SIGNING_KEY": "exactly-once-signing-key-" + "k" * 32,
                            "APPROVAL_BASE_URL": "http://approvals.test"}.items():
            monkeypatch.setenv(name, value)
        ledger = Ledger.from_connection_string(azurite.connection_string, prefix)

        async def main() -> None:
            # A stopped clock: the reconciler's timer must not read the repository mid-test.
            host = Host(REPO, port=0, data_dir=tmp_path / "devhost", clock=VirtualClock())
            await host.start()
            try:
                connector = aiohttp.TCPConnector(limit=CONCURRENCY)
                async with aiohttp.ClientSession(connector=connector) as http:
                    await scenario(Stack(host, ledger, http, registry.host), pushed)
            finally:
                await host.stop()
                await close_clients()

        asyncio.run(main())

    return start


def test_a_burst_of_400_deliveries_of_100_images_has_exactly_100_started(serve: Any) -> None:
    """Each image delivered 4 times under distinct event ids, its deliveries side by side,
    16 in flight."""
    async def scenario(s: Stack, images: list[PushedImage]) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def deliver(event_id: str, image: PushedImage) -> tuple[str, str, str]:
            async with gate:
                code, body = await s.post(s.body(event_id, image))
            (event,) = body["events"]
            assert code == (202 if event["outcome"] == "started" else 200), body
            return image.digest, event["outcome"], event["releaseId"]

        results = await asyncio.gather(*(
            deliver(f"burst-{n}-{k}", image) for n, image in enumerate(images)
            for k in range(DELIVERIES_PER_IMAGE)))
        started = [digest for digest, outcome, _ in results if outcome == "started"]
        assert len(results) == IMAGES * DELIVERIES_PER_IMAGE
        assert sorted(started) == sorted(image.digest for image in images)
        assert [outcome for _, outcome, _ in results].count("duplicate") == 300
        assert len({release for _, _, release in results}) == IMAGES
        engine = s.host.engine
        assert engine is not None and len(engine.query(prefix=f"{SERVICE}-")) == IMAGES

        rows = await asyncio.to_thread(s.ledger.events, SERVICE, limit=1000)
        assert len(rows) == IMAGES * DELIVERIES_PER_IMAGE
        assert sorted(row.digest for row in rows if row.outcome == "started") == sorted(started)
        claims = await asyncio.to_thread(s.ledger.seen_digests, SERVICE)
        assert claims == {image.digest for image in images}

    serve(IMAGES, scenario)


def test_a_redelivered_event_keeps_started_and_its_timeline_counts_deliveries(
        serve: Any) -> None:
    """The same event id twice: the second answer is `duplicate`, the row keeps `started`,
    and the release's timeline (API and dashboard) says how often it came."""
    async def scenario(s: Stack, images: list[PushedImage]) -> None:
        (image,) = images
        code, first = await s.post(s.body("only-event", image))
        assert code == 202 and first["events"][0]["outcome"] == "started"
        release_id = first["events"][0]["releaseId"]
        code, again = await s.post(s.body("only-event", image))
        assert code == 200 and again["events"][0]["outcome"] == "duplicate"

        row = await asyncio.to_thread(s.ledger.get_event, "only-event", service=SERVICE)
        assert row is not None and (row.outcome, row.deliveries, row.release_id) == (
            "started", 2, release_id)
        for _ in range(300):  # the release's ledger row comes with its first step
            if await asyncio.to_thread(s.ledger.get_release, release_id, service=SERVICE):
                break
            await asyncio.sleep(0.02)
        code, shown = await s.get(f"/api/releases/{release_id}")
        assert code == 200, shown
        registry_entries = [e["what"] for e in shown["timeline"] if e["source"] == "registry"]
        assert len(registry_entries) == 1
        assert f"push {image.repository}:{image.tag} via acr-webhook: started" in \
            registry_entries[0]
        assert registry_entries[0].endswith("(delivered 2 times)")
        async with s.http.get(f"{s.host.base_url}/api/dashboard/releases/{release_id}") as page:
            assert page.status == 200
            assert "(delivered 2 times)" in await page.text()

    serve(1, scenario)
