"""`POST /api/registry/events` end to end: devhost runs the app, Azurite holds the ledger.

Every documented payload kind, authentication, size limit, handshakes, loop
prevention, duplicates, supersede, a broken policy, and random bodies never
answering 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.host import Host
from sandbox.azurite import Azurite
from shared.ledger.aio import close_clients
from shared.ledger.store import Ledger

REPO = Path(__file__).resolve().parents[2]
PAYLOADS = Path(__file__).parent / "payloads"
TOKEN = "webhook-test-token-7d1f"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTE = "/api/registry/events"
POLICY = """\
version: 1
registries:
  acr: {url: myacr.azurecr.io, auth: anonymous}
  local: {url: "127.0.0.1:5000", auth: anonymous}
services:
  delivery:
    registry: acr
    repository: delivery
    tags: {pattern: '^v?\\d+\\.\\d+\\.\\d+$', allowLatest: false}
    environments:
      - name: qa
        target:
          cluster: {name: qa-cluster, kubeconfigSecret: qa-kubeconfig}
          namespace: delivery
          deployment: delivery
          container: app
        gate: {approvers: {users: [ann@example.com]}, deadline: 72h}
      - name: prod
        target:
          cluster: {name: prod-cluster, kubeconfigSecret: prod-kubeconfig}
          namespace: delivery
          deployment: delivery
          container: app
        promotion: {namespace: prod/}
  burst:
    registry: acr
    repository: burst
    supersede: {waitingAtGate: false}
    environments:
      - name: qa
        target:
          cluster: {name: burst-qa, kubeconfigSecret: qa-kubeconfig}
          namespace: burst
          deployment: burst
          container: app
        gate: {approvers: {users: [ann@example.com]}, deadline: 72h}
  shop:
    registry: local
    repository: shop
    environments:
      - name: qa
        target:
          cluster: {name: shop-qa, kubeconfigSecret: qa-kubeconfig}
          namespace: shop
          deployment: shop
          container: app
        gate: {approvers: {users: [ann@example.com]}, deadline: 72h}
"""


class Stack:
    """The app in devhost with its ledger on Azurite, and an HTTP session."""

    def __init__(self, host: Host, ledger: Ledger, http: aiohttp.ClientSession) -> None:
        self.host, self.ledger, self.http = host, ledger, http

    async def post(self, body: bytes | str, headers: dict[str, str] | None = None,
                   method: str = "POST") -> tuple[int, Any, dict[str, str]]:
        data = body.encode() if isinstance(body, str) else body
        async with self.http.request(method, self.host.base_url + ROUTE, data=data,
                                     headers={**AUTH, **(headers or {})}) as response:
            text = await response.text()
            return (response.status, json.loads(text) if text.strip() else None,
                    dict(response.headers))

    async def status(self, instance_id: str) -> dict[str, Any] | None:
        url = f"{self.host.base_url}/runtime/webhooks/durabletask/instances/{instance_id}"
        async with self.http.get(url) as response:
            text = await response.text()
            return json.loads(text) if text else None

    async def until(self, instance_id: str, *states: str, custom: str | None = None) -> dict:
        for _ in range(300):
            status = await self.status(instance_id)
            if status and status["runtimeStatus"] in states and (
                    custom is None or (status.get("customStatus") or {}).get("step") == custom):
                return status
            await asyncio.sleep(0.02)
        raise AssertionError(f"{instance_id} never reached {states}/{custom}: {status}")


async def ledger_row(s: Stack, release_id: str, state: str) -> Any:
    """The release's ledger row once it is in `state` (the journal writes it after the step)."""
    for _ in range(300):
        row = await asyncio.to_thread(s.ledger.get_release, release_id, service="delivery")
        if row is not None and row.state == state:
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"{release_id} never reached {state} in the ledger: {row}")


@pytest.fixture
def stack_env(tmp_path: Path, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    prefix = "t" + uuid.uuid4().hex[:10]
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", prefix)
    monkeypatch.setenv("RELEASE_POLICY_FILE", str(policy))
    monkeypatch.setenv("REGISTRY_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("APPROVAL_SIGNING_KEY", "ingest-tests-signing-key-" + "k" * 32)
    monkeypatch.setenv("APPROVAL_BASE_URL", "http://approvals.test")
    return Ledger.from_connection_string(azurite.connection_string, prefix)


def scenario(test: Callable[[Stack], Awaitable[None]]) -> Callable[..., None]:
    def run(tmp_path: Path, stack_env: Ledger) -> None:
        async def main() -> None:
            host = Host(REPO, port=0, data_dir=tmp_path / "devhost")
            await host.start()
            try:
                connector = aiohttp.TCPConnector(limit=100)
                async with aiohttp.ClientSession(connector=connector) as http:
                    await test(Stack(host, stack_env, http))
            finally:
                await host.stop()
                await close_clients()

        asyncio.run(main())

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


def payload(name: str) -> str:
    return (PAYLOADS / name).read_text()


def digest(n: int) -> str:
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def acr_push(event_id: str, tag: str, digest_: str, repository: str = "delivery") -> str:
    return json.dumps({"id": event_id, "timestamp": "2026-11-22T04:10:12Z", "action": "push",
                       "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "digest": digest_, "repository": repository, "tag": tag},
                       "request": {"host": "myacr.azurecr.io"}})


@scenario
async def test_a_push_starts_one_release_and_a_redelivery_is_a_duplicate(s: Stack) -> None:
    code, body, _ = await s.post(payload("acr_push.json"))
    assert code == 202
    (event,) = body["events"]
    assert event["outcome"] == "started" and event["releaseId"] == "delivery-aaaaaaaaaaaaaaaa"
    assert event["statusUri"] == f"{s.host.base_url}/api/releases/delivery-aaaaaaaaaaaaaaaa"
    assert "webhooks/durabletask" not in json.dumps(body)
    status = await s.until("delivery-aaaaaaaaaaaaaaaa", "Running", custom="approval")
    assert status["customStatus"]["waitingFor"]["event"].startswith("approval:qa")
    assert "pushedBy" not in status["input"]["image"]  # this ACR webhook names no actor

    code, body, _ = await s.post(payload("eventgrid_push.json"))  # same digest via Event Grid
    assert code == 200
    assert body["events"][0]["outcome"] == "duplicate"
    assert body["events"][0]["releaseId"] == "delivery-aaaaaaaaaaaaaaaa"
    recorded = {e.event_id: e for e in s.ledger.events(service="delivery")}
    assert recorded["cb8c3971-9adc-488b-bdd8-43cbb4974ff5"].outcome == "started"
    assert recorded["eg-1"].outcome == "duplicate"
    release = await ledger_row(s, "delivery-aaaaaaaaaaaaaaaa", "WaitingForApproval")
    assert release.stages["qa"].state == "WaitingForApproval"
    assert release.created_at <= release.stages["qa"].started  # type: ignore[operator]


@pytest.mark.parametrize("name, reason", [
    ("acr_delete.json", "action 'delete' is not acted on"),
    ("acr_quarantine.json", "action 'quarantine' is not acted on"),
    ("acr_chart_push.json", "action 'chart_push' is not acted on"),
    ("acr_chart_delete.json", "action 'chart_delete' is not acted on"),
    ("acr_ping.json", "ping"),
])
def test_actions_we_do_not_act_on_answer_200_with_the_reason(
        tmp_path: Path, stack_env: Ledger, name: str, reason: str) -> None:
    @scenario
    async def check(s: Stack) -> None:
        code, body, _ = await s.post(payload(name))
        assert code == 200
        assert body["events"][0]["outcome"] == "ignored"
        assert body["events"][0]["reason"] == reason
        assert [e.outcome for e in s.ledger.events(unmatched=True)] == ["ignored"]

    check(tmp_path, stack_env)


@scenario
async def test_oci_envelope_ignores_the_blob_and_starts_the_manifest(s: Stack) -> None:
    code, body, _ = await s.post(payload("oci_envelope.json"))
    assert code == 202
    blob, manifest = body["events"]
    assert blob["outcome"] == "ignored" and "without a tag" in blob["reason"]
    assert manifest["outcome"] == "started" and manifest["service"] == "shop"


@scenario
async def test_cloud_events_batch_and_single(s: Stack) -> None:
    code, body, _ = await s.post(payload("cloudevents_batch.json"))
    assert code == 200
    assert [e["outcome"] for e in body["events"]] == ["ignored", "ignored"]
    assert "latest" in body["events"][0]["reason"]
    code, body, _ = await s.post(payload("cloudevent_push.json"))
    assert code == 202 and body["events"][0]["outcome"] == "started"


@scenario
async def test_event_grid_handshakes(s: Stack) -> None:
    code, body, _ = await s.post(payload("eventgrid_validation.json"),
                                 {"aeg-event-type": "SubscriptionValidation",
                                  "Authorization": ""})
    assert (code, body) == (200, {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    code, _, headers = await s.post(b"", {"WebHook-Request-Origin": "eventgrid.azure.net"},
                                    method="OPTIONS")
    assert code == 200 and headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


@scenario
async def test_authentication_and_size_limit(s: Stack) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {TOKEN}"}):
        code, body, _ = await s.post(payload("acr_push.json"), headers)
        assert (code, body) == (401, None)
    code, body, _ = await s.post(b" " * (1024 * 1024 + 1))
    assert code == 413 and "larger than" in body["error"]
    assert s.ledger.events() == [] and s.ledger.events(unmatched=True) == []


@scenario
async def test_our_own_promotion_retags_are_ignored(s: Stack) -> None:
    code, body, _ = await s.post(acr_push("retag-1", "v1.0.0", digest(1),
                                          repository="prod/delivery"))
    assert code == 200
    assert body["events"][0]["reason"] == "prod/delivery is a promotion target (our own retag)"


@scenario
async def test_a_newer_version_supersedes_a_release_waiting_at_its_gate(s: Stack) -> None:
    _, older, _ = await s.post(acr_push("e-1", "v1.0.0", digest(1)))
    old_id = older["events"][0]["releaseId"]
    await s.until(old_id, "Running", custom="approval")
    _, newer, _ = await s.post(acr_push("e-2", "v1.1.0", digest(2)))
    new_id = newer["events"][0]["releaseId"]

    status = await s.until(old_id, "Completed")
    assert status["output"]["outcome"] == "Superseded"
    assert status["output"]["reason"] == "superseded by v1.1.0"
    assert s.ledger.get_release(old_id, service="delivery").state == "Superseded"
    assert (await s.until(new_id, "Running", custom="approval"))["runtimeStatus"] == "Running"


@scenario
async def test_the_same_tag_pushed_again_supersedes_the_release_of_its_old_image(
        s: Stack) -> None:
    _, first, _ = await s.post(acr_push("tag-1", "v2.0.0", digest(20)))
    old_id = first["events"][0]["releaseId"]
    await s.until(old_id, "Running", custom="approval")
    code, again, _ = await s.post(acr_push("tag-2", "v2.0.0", digest(21)))  # tag overwritten
    assert code == 202 and again["events"][0]["outcome"] == "started"
    new_id = again["events"][0]["releaseId"]
    assert new_id != old_id

    assert again["events"][0]["reason"] == (
        f"delivery v2.0.0; tag v2.0.0 was pushed before as {digest(20)} ({old_id},"
        " WaitingForApproval)")

    status = await s.until(old_id, "Completed")
    assert status["output"]["outcome"] == "Superseded"
    assert status["output"]["reason"] == f"superseded by v2.0.0 pushed again as {digest(21)}"
    new = await s.until(new_id, "Running", custom="approval")
    earlier = {"releaseId": old_id, "digest": digest(20), "state": "WaitingForApproval"}
    assert new["input"]["image"]["overwrites"] == earlier
    assert new["customStatus"]["overwrites"] == earlier


@scenario
async def test_malformed_bodies_get_400_and_a_broken_policy_503(s: Stack) -> None:
    code, body, _ = await s.post(b'{"events": {}}')
    assert (code, body) == (400, {"error": "'events' must be an array"})
    Path(__import__("os").environ["RELEASE_POLICY_FILE"]).write_text("services: [\n")
    code, body, _ = await s.post(payload("acr_push.json"))
    assert code == 503 and "policy is invalid" in body["error"]
    assert s.ledger.events() == []


def test_no_body_makes_the_endpoint_answer_500(tmp_path: Path, stack_env: Ledger) -> None:
    bodies: list[bytes] = []

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.one_of(st.binary(max_size=200), st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
            st.sampled_from(["id", "action", "target", "events", "eventType", "data",
                             "specversion", "type", "repository", "tag", "digest",
                             "mediaType", "request", "host"]), inner, max_size=5),
        max_leaves=15).map(lambda v: json.dumps(v).encode())))
    def collect(body: bytes) -> None:
        bodies.append(body)

    collect()

    @scenario
    async def check(s: Stack) -> None:
        codes = [(await s.post(body))[0] for body in bodies]
        assert 500 not in codes and 503 not in codes
        assert set(codes) <= {200, 202, 400}

    check(tmp_path, stack_env)


@scenario
async def test_burst_of_500_deliveries_half_duplicates(s: Stack) -> None:
    pushes = [acr_push(f"burst-{n}", f"v2.{n}.0", digest(1000 + n), "burst")
              for n in range(250)]
    redeliveries = [acr_push(f"burst-again-{n}", f"v2.{n}.0", digest(1000 + n), "burst")
                    for n in range(250)]
    results = await asyncio.gather(*(s.post(body) for body in pushes + redeliveries))
    outcomes = [body["events"][0]["outcome"] for _, body, _ in results]
    assert outcomes.count("started") == 250 and outcomes.count("duplicate") == 250
    assert len(s.ledger.events(service="burst", limit=1000)) == 500
    assert len(s.ledger.seen_digests("burst")) == 250
    engine = s.host.engine
    assert engine is not None
    assert len(engine.query(prefix="burst-")) == 250


@scenario
async def test_the_native_event_grid_trigger_starts_a_release(s: Stack) -> None:
    url = f"{s.host.base_url}/runtime/webhooks/eventgrid?functionName=registry_event_grid"
    headers = {"aeg-event-type": "Notification", "Content-Type": "application/json"}
    async with s.http.post(url, data=payload("eventgrid_push.json"), headers=headers) as response:
        assert response.status in (200, 202)
    (event,) = s.ledger.events(service="delivery")
    assert (event.event_id, event.source, event.outcome) == ("eg-1", "event-grid", "started")
    status = await s.until(event.release_id, "Running", custom="approval")
    assert status["input"]["image"]["pushedBy"] == "ci-bot"  # the event's actor.name


@scenario
async def test_a_claim_whose_start_was_lost_is_repaired_by_the_next_delivery(s: Stack) -> None:
    """A crash between the digest claim and the Durable start: the redelivery starts it."""
    lost = digest(4242)
    release_id = "delivery-" + lost.removeprefix("sha256:")[:16]
    assert s.ledger.claim_digest("delivery", lost, release_id, "v3.0.0", "crashed-delivery")
    assert await s.status(release_id) is None
    code, body, _ = await s.post(acr_push("redelivered", "v3.0.0", lost))
    assert code == 202 and body["events"][0]["outcome"] == "started"
    await s.until(release_id, "Running", custom="approval")
    code, body, _ = await s.post(acr_push("again", "v3.0.0", lost))
    assert code == 200 and body["events"][0]["outcome"] == "duplicate"
    engine = s.host.engine
    assert engine is not None and len(engine.query(prefix=release_id)) == 1


@scenario
async def test_a_redelivery_of_a_release_this_process_started_needs_no_claim(s: Stack) -> None:
    """The process remembers the releases it saw exist: their redeliveries skip the claim."""
    pushed = digest(5151)
    code, body, _ = await s.post(acr_push("first", "v5.1.0", pushed))
    assert code == 202 and body["events"][0]["outcome"] == "started"
    release_id = body["events"][0]["releaseId"]
    claims = s.ledger.client.get_table_client(s.ledger.digests_table)
    claims.delete_entity("delivery", pushed)  # had the redelivery claimed, the row would be back

    code, body, _ = await s.post(acr_push("second", "v5.1.0", pushed))
    assert code == 200
    assert body["events"][0] | {"statusUri": None} == {
        "eventId": "second", "outcome": "duplicate", "service": "delivery",
        "releaseId": release_id, "reason": f"release {release_id} already exists for {pushed}",
        "statusUri": None}
    assert s.ledger.digest_claim("delivery", pushed) is None
    assert {e.event_id: e.outcome for e in s.ledger.events(service="delivery")} == {
        "first": "started", "second": "duplicate"}
