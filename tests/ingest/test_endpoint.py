"""`POST /api/registry/events` end to end: devhost runs the app, Azurite holds the ledger.

Every documented payload kind, authentication, size limit, handshakes, loop
prevention, duplicates, supersede, a broken policy, and random bodies never
answering 500. Every pushed image is real (the registry is asked before a release
starts); what the registry says and when it cannot answer: test_registry_truth.py.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_stack import TOKEN, Env, Stack, ledger_row, scenario

from shared.ingest.decisions import release_id


@scenario
async def test_a_push_starts_one_release_and_a_redelivery_is_a_duplicate(s: Stack) -> None:
    pushed = s.push("delivery", "v1.4.2")
    rid = release_id("delivery", pushed)
    code, body, _ = await s.post(s.payload("acr_push.json", pushed))
    assert code == 202
    (event,) = body["events"]
    assert event["outcome"] == "started" and event["releaseId"] == rid
    assert event["statusUri"] == f"{s.host.base_url}/api/releases/{rid}"
    assert "webhooks/durabletask" not in json.dumps(body)
    status = await s.until(rid, "Running", custom="approval")
    assert status["customStatus"]["waitingFor"]["event"].startswith("approval:qa")
    assert "pushedBy" not in status["input"]["image"]  # this ACR webhook names no actor
    assert status["input"]["image"]["tagCurrent"] is True
    assert status["input"]["image"]["reference"] == \
        f"{s.env.registry.host}/{s.env.repo('delivery')}@{pushed}"

    code, body, _ = await s.post(s.payload("eventgrid_push.json", pushed))  # via Event Grid
    assert code == 200
    assert body["events"][0]["outcome"] == "duplicate"
    assert body["events"][0]["releaseId"] == rid
    recorded = {e.event_id: e for e in s.ledger.events(service="delivery")}
    assert recorded["cb8c3971-9adc-488b-bdd8-43cbb4974ff5"].outcome == "started"
    assert recorded["cb8c3971-9adc-488b-bdd8-43cbb4974ff5"].tag_current is True
    assert recorded["eg-1"].outcome == "duplicate"
    release = await ledger_row(s, rid, "WaitingForApproval")
    assert release.stages["qa"].state == "WaitingForApproval"
    assert release.created_at <= release.stages["qa"].started


@pytest.mark.parametrize("name, reason", [
    ("acr_delete.json", "action 'delete' is not acted on"),
    ("acr_quarantine.json", "action 'quarantine' is not acted on"),
    ("acr_chart_push.json", "action 'chart_push' is not acted on"),
    ("acr_chart_delete.json", "action 'chart_delete' is not acted on"),
    ("acr_ping.json", "ping"),
])
def test_actions_we_do_not_act_on_answer_200_with_the_reason(
        tmp_path: Path, stack_env: Env, name: str, reason: str) -> None:
    @scenario
    async def check(s: Stack) -> None:
        code, body, _ = await s.post(s.payload(name))
        assert code == 200
        assert body["events"][0]["outcome"] == "ignored"
        assert body["events"][0]["reason"] == reason
        assert [e.outcome for e in s.ledger.events(unmatched=True)] == ["ignored"]

    check(tmp_path, stack_env)


@scenario
async def test_oci_envelope_ignores_the_blob_and_starts_the_manifest(s: Stack) -> None:
    code, body, _ = await s.post(s.payload("oci_envelope.json", s.push("shop", "v1.4.2")))
    assert code == 202
    blob, manifest = body["events"]
    assert blob["outcome"] == "ignored" and "without a tag" in blob["reason"]
    assert manifest["outcome"] == "started" and manifest["service"] == "shop"


@scenario
async def test_cloud_events_batch_and_single(s: Stack) -> None:
    code, body, _ = await s.post(s.payload("cloudevents_batch.json"))
    assert code == 200
    assert [e["outcome"] for e in body["events"]] == ["ignored", "ignored"]
    assert "latest" in body["events"][0]["reason"]
    repository = s.env.repo("delivery")
    children = s.env.pusher.push_images(repository, ["amd64", "arm64"])
    index = s.env.pusher.push_index(repository, "v1.4.2", children)  # the event says: index
    code, body, _ = await s.post(s.payload("cloudevent_push.json", index))
    assert code == 202 and body["events"][0]["outcome"] == "started"
    status = await s.until(body["events"][0]["releaseId"], "Running")
    assert status["input"]["image"]["digest"] == index


@scenario
async def test_event_grid_handshakes(s: Stack) -> None:
    code, body, _ = await s.post(s.payload("eventgrid_validation.json"),
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
        code, body, _ = await s.post(s.payload("acr_push.json"), headers)
        assert (code, body) == (401, None)
    code, body, _ = await s.post(b" " * (1024 * 1024 + 1))
    assert code == 413 and "larger than" in body["error"]
    assert s.ledger.events() == [] and s.ledger.events(unmatched=True) == []


@scenario
async def test_our_own_promotion_retags_are_ignored(s: Stack) -> None:
    target = "prod/" + s.env.repo("delivery")
    retagged = s.env.pusher.push_image(target, "v1.0.0")
    code, body, _ = await s.post(s.acr_push("retag-1", "v1.0.0", retagged, repository=target))
    assert code == 200
    assert body["events"][0]["reason"] == f"{target} is a promotion target (our own retag)"


@scenario
async def test_a_newer_version_supersedes_a_release_waiting_at_its_gate(s: Stack) -> None:
    _, older, _ = await s.post(s.acr_push("e-1", "v1.0.0", s.push("delivery", "v1.0.0")))
    old_id = older["events"][0]["releaseId"]
    await s.until(old_id, "Running", custom="approval")
    _, newer, _ = await s.post(s.acr_push("e-2", "v1.1.0", s.push("delivery", "v1.1.0")))
    new_id = newer["events"][0]["releaseId"]

    status = await s.until(old_id, "Completed")
    assert status["output"]["outcome"] == "Superseded"
    assert status["output"]["reason"] == "superseded by v1.1.0"
    assert s.ledger.get_release(old_id, service="delivery").state == "Superseded"
    assert (await s.until(new_id, "Running", custom="approval"))["runtimeStatus"] == "Running"


@scenario
async def test_the_same_tag_pushed_again_supersedes_the_release_of_its_old_image(
        s: Stack) -> None:
    first_image = s.push("delivery", "v2.0.0", "first")
    _, first, _ = await s.post(s.acr_push("tag-1", "v2.0.0", first_image))
    old_id = first["events"][0]["releaseId"]
    await s.until(old_id, "Running", custom="approval")
    second_image = s.push("delivery", "v2.0.0", "second")  # the tag is pushed again
    code, again, _ = await s.post(s.acr_push("tag-2", "v2.0.0", second_image))
    assert code == 202 and again["events"][0]["outcome"] == "started"
    new_id = again["events"][0]["releaseId"]
    assert new_id != old_id

    assert again["events"][0]["reason"] == (
        f"delivery v2.0.0; tag v2.0.0 was pushed before as {first_image} ({old_id},"
        " WaitingForApproval)")

    status = await s.until(old_id, "Completed")
    assert status["output"]["outcome"] == "Superseded"
    assert status["output"]["reason"] == \
        f"superseded by v2.0.0 pushed again as {second_image}"
    new = await s.until(new_id, "Running", custom="approval")
    earlier = {"releaseId": old_id, "digest": first_image, "state": "WaitingForApproval"}
    assert new["input"]["image"]["overwrites"] == earlier
    assert new["customStatus"]["overwrites"] == earlier


@scenario
async def test_malformed_bodies_get_400_and_a_broken_policy_503(s: Stack) -> None:
    code, body, _ = await s.post(b'{"events": {}}')
    assert (code, body) == (400, {"error": "'events' must be an array"})
    Path(__import__("os").environ["RELEASE_POLICY_FILE"]).write_text("services: [\n")
    code, body, _ = await s.post(s.payload("acr_push.json", s.push("delivery", "v1.4.2")))
    assert code == 503 and "policy is invalid" in body["error"]
    assert s.ledger.events() == []


def test_no_body_makes_the_endpoint_answer_500(tmp_path: Path, stack_env: Env) -> None:
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
    tags = [f"v2.{n}.0" for n in range(250)]
    images = s.env.pusher.push_images(s.env.repo("burst"), tags)
    pushes = [s.acr_push(f"burst-{n}", tag, image, "burst")
              for n, (tag, image) in enumerate(zip(tags, images, strict=True))]
    redeliveries = [s.acr_push(f"burst-again-{n}", tag, image, "burst")
                    for n, (tag, image) in enumerate(zip(tags, images, strict=True))]
    results = await asyncio.gather(*(s.post(body) for body in pushes + redeliveries))
    outcomes = [body["events"][0]["outcome"] for _, body, _ in results]
    assert Counter(outcomes) == {"started": 250, "duplicate": 250}
    assert len(s.ledger.events(service="burst", limit=1000)) == 500
    assert len(s.ledger.seen_digests("burst")) == 250
    assert len(s.instances("burst-")) == 250


@scenario
async def test_the_native_event_grid_trigger_starts_a_release(s: Stack) -> None:
    url = f"{s.host.base_url}/runtime/webhooks/eventgrid?functionName=registry_event_grid"
    headers = {"aeg-event-type": "Notification", "Content-Type": "application/json"}
    pushed = s.push("delivery", "v1.4.2")
    async with s.http.post(url, data=s.payload("eventgrid_push.json", pushed),
                           headers=headers) as response:
        assert response.status in (200, 202)
    (event,) = s.ledger.events(service="delivery")
    assert (event.event_id, event.source, event.outcome) == ("eg-1", "event-grid", "started")
    status = await s.until(event.release_id, "Running", custom="approval")
    assert status["input"]["image"]["pushedBy"] == "ci-bot"  # the event's actor.name
    assert event.digest == pushed and event.tag_current is True


@scenario
async def test_a_claim_whose_start_was_lost_is_repaired_by_the_next_delivery(s: Stack) -> None:
    """A crash between the digest claim and the Durable start: the redelivery starts it."""
    lost = s.push("delivery", "v3.0.0")
    rid = release_id("delivery", lost)
    assert s.ledger.claim_digest("delivery", lost, rid, "v3.0.0", "crashed-delivery")
    assert await s.status(rid) is None
    code, body, _ = await s.post(s.acr_push("redelivered", "v3.0.0", lost))
    assert code == 202 and body["events"][0]["outcome"] == "started"
    await s.until(rid, "Running", custom="approval")
    code, body, _ = await s.post(s.acr_push("again", "v3.0.0", lost))
    assert code == 200 and body["events"][0]["outcome"] == "duplicate"
    assert len(s.instances(rid)) == 1


@scenario
async def test_a_redelivery_of_a_release_this_process_started_needs_no_claim(s: Stack) -> None:
    """The process remembers the releases it saw exist: their redeliveries skip the claim."""
    pushed = s.push("delivery", "v5.1.0")
    code, body, _ = await s.post(s.acr_push("first", "v5.1.0", pushed))
    assert code == 202 and body["events"][0]["outcome"] == "started"
    release_id = body["events"][0]["releaseId"]
    claims = s.ledger.client.get_table_client(s.ledger.digests_table)
    claims.delete_entity("delivery", pushed)  # had the redelivery claimed, the row would be back

    code, body, _ = await s.post(s.acr_push("second", "v5.1.0", pushed))
    assert code == 200
    assert body["events"][0] | {"statusUri": None} == {
        "eventId": "second", "outcome": "duplicate", "service": "delivery",
        "releaseId": release_id, "reason": f"release {release_id} already exists for {pushed}",
        "statusUri": None}
    assert s.ledger.digest_claim("delivery", pushed) is None
    assert {e.event_id: e.outcome for e in s.ledger.events(service="delivery")} == {
        "first": "started", "second": "duplicate"}
