"""The registry, not the event, says what an image is: through `POST /api/registry/events`.

Events naming digests the service's repository does not hold are `rejected` and start
nothing; what is not a container image is `ignored`; a registry that cannot answer (down,
5xx after retries, refusing our identity) is a 503 that records and claims nothing, and a
later delivery starts the release. Real docker-registry, its fault proxy, devhost, Azurite.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from ingest_stack import Env, Stack, scenario

from sandbox.registry_push import HELM_CHART, HELM_CONFIG
from shared.ingest.decisions import release_id

MADE_UP = "sha256:" + hashlib.sha256(b"never pushed").hexdigest()


async def assert_nothing_started(s: Stack, service: str, digest: str) -> None:
    """No digest claim, no Durable instance for this image."""
    assert s.ledger.digest_claim(service, digest) is None
    assert s.instances(release_id(service, digest)) == []
    assert await s.status(release_id(service, digest)) is None


@scenario
async def test_a_digest_the_repository_does_not_hold_is_rejected(s: Stack) -> None:
    s.push("delivery", "v1.0.0")  # the repository exists; the digest is not in it
    code, body, _ = await s.post(s.acr_push("forged", "v1.0.0", MADE_UP))
    assert code == 200
    (event,) = body["events"]
    where = f"{s.env.registry.host}/{s.env.repo('delivery')}"
    assert (event["outcome"], event["reason"], event["releaseId"]) == (
        "rejected", f"digest {MADE_UP} is not in {where}", None)
    (recorded,) = s.ledger.events(service="delivery")
    assert (recorded.event_id, recorded.outcome) == ("forged", "rejected")
    assert recorded.reason == f"digest {MADE_UP} is not in {where}"
    await assert_nothing_started(s, "delivery", MADE_UP)


@scenario
async def test_a_digest_of_another_repository_of_the_same_registry_is_rejected(
        s: Stack) -> None:
    elsewhere = s.push("shop", "v1.0.0")  # real, but in the shop repository
    code, body, _ = await s.post(s.acr_push("wrong-repo", "v1.0.0", elsewhere))
    assert code == 200
    assert body["events"][0]["outcome"] == "rejected"
    assert body["events"][0]["reason"] == \
        f"digest {elsewhere} is not in {s.env.registry.host}/{s.env.repo('delivery')}"
    await assert_nothing_started(s, "delivery", elsewhere)


@scenario
async def test_a_blob_digest_is_rejected(s: Stack) -> None:
    s.push("delivery", "v1.0.0")
    blob, _ = s.env.pusher.push_blob(s.env.repo("delivery"), b"a layer, not a manifest")
    code, body, _ = await s.post(s.acr_push("blob", "v1.0.0", blob))
    assert code == 200
    (event,) = body["events"]
    assert event["outcome"] == "rejected"
    assert event["reason"] == (
        f"digest {blob} is not in {s.env.registry.host}/{s.env.repo('delivery')}: it is a"
        " blob (a layer or a config), not an image manifest")
    await assert_nothing_started(s, "delivery", blob)


@pytest.mark.parametrize("config, layer, artifact, what", [
    (HELM_CONFIG, HELM_CHART, None, f"a Helm chart (config type {HELM_CONFIG})"),
    ("application/vnd.example.policy.config.v1+json", "application/octet-stream", None,
     "an artifact with config type application/vnd.example.policy.config.v1+json"),
    ("application/vnd.oci.image.config.v1+json", "application/octet-stream",
     "application/vnd.example.sbom", "an OCI artifact of type application/vnd.example.sbom"),
])
def test_a_chart_or_another_artifact_is_ignored_with_what_it_is(
        tmp_path: Path, stack_env: Env, config: str, layer: str, artifact: str | None,
        what: str) -> None:
    @scenario
    async def check(s: Stack) -> None:
        repository = s.env.repo("delivery")
        chart = s.env.pusher.push_artifact(repository, "v1.0.0", config, layer, artifact)
        code, body, _ = await s.post(s.acr_push("chart", "v1.0.0", chart))
        assert code == 200
        (event,) = body["events"]
        assert event["outcome"] == "ignored"
        assert event["reason"] == (f"{s.env.registry.host}/{repository}@{chart} is {what},"
                                   " not an image a cluster can run")
        await assert_nothing_started(s, "delivery", chart)

    check(tmp_path, stack_env)


@scenario
async def test_a_tag_moved_on_since_the_push_still_starts_and_says_so(s: Stack) -> None:
    pushed = s.push("delivery", "v1.2.0", "first")
    s.push("delivery", "v1.2.0", "second")  # the tag names another image before we hear
    code, body, _ = await s.post(s.acr_push("late", "v1.2.0", pushed))
    assert code == 202 and body["events"][0]["outcome"] == "started"
    rid = release_id("delivery", pushed)
    status = await s.until(rid, "Running", custom="approval")
    assert status["input"]["image"]["digest"] == pushed
    assert status["input"]["image"]["tagCurrent"] is False
    (recorded,) = s.ledger.events(service="delivery")
    assert (recorded.outcome, recorded.tag_current) == ("started", False)


@scenario
async def test_an_unreachable_registry_is_503_records_nothing_and_a_later_delivery_starts(
        s: Stack) -> None:
    code, body, _ = await s.post(s.acr_push("down-1", "v1.0.0", MADE_UP, "down"))
    assert code == 503
    assert body == {"error": f"registry {s.env.down_host} could not confirm the pushed image;"
                             " try again later"}
    assert s.ledger.events(service="down") == []
    assert s.ledger.digest_claim("down", MADE_UP) is None and s.instances() == []


@scenario
async def test_a_registry_failing_after_retries_is_503_and_the_redelivery_starts(
        s: Stack) -> None:
    proxy, repository = s.env.proxy, s.env.repo("flaky")
    image = s.env.pusher.push_image(repository, "v1.0.0")
    proxy.inject(503, times=100, path_contains=f"/v2/{repository}/")
    body = s.acr_push("flaky-1", "v1.0.0", image, "flaky")
    code, answer, _ = await s.post(body)
    assert code == 503 and proxy.host in answer["error"]
    assert proxy.stats().injected >= 3  # retried before giving up
    assert s.ledger.events(service="flaky") == []
    assert s.ledger.digest_claim("flaky", image) is None
    assert s.instances() == []

    proxy.reset()  # the registry recovers; the sender delivers the same event again
    code, answer, _ = await s.post(body)
    assert code == 202 and answer["events"][0]["outcome"] == "started"
    (recorded,) = s.ledger.events(service="flaky")
    assert (recorded.event_id, recorded.outcome, recorded.tag_current) == (
        "flaky-1", "started", True)
    await s.until(release_id("flaky", image), "Running", custom="approval")


@scenario
async def test_a_transient_registry_failure_is_retried_within_the_delivery(s: Stack) -> None:
    proxy, repository = s.env.proxy, s.env.repo("flaky")
    image = s.env.pusher.push_image(repository, "v1.0.0")
    proxy.inject(503, times=1, method="GET", path_contains=f"/v2/{repository}/manifests/")
    code, answer, _ = await s.post(s.acr_push("blip", "v1.0.0", image, "flaky"))
    assert code == 202 and answer["events"][0]["outcome"] == "started"
    assert proxy.stats().injected == 1


def test_a_registry_refusing_our_identity_is_503_with_a_log_line_naming_it(
        tmp_path: Path, stack_env: Env, caplog: pytest.LogCaptureFixture) -> None:
    @scenario
    async def check(s: Stack) -> None:
        proxy, repository = s.env.proxy, s.env.repo("flaky")
        image = s.env.pusher.push_image(repository, "v1.0.0")
        proxy.inject(401, times=10, path_contains=f"/v2/{repository}/")
        with caplog.at_level(logging.WARNING, logger="shared.ingest.service"):
            code, _, _ = await s.post(s.acr_push("denied", "v1.0.0", image, "flaky"))
        assert code == 503
        assert s.ledger.events(service="flaky") == []
        lines = [r.getMessage() for r in caplog.records if r.name == "shared.ingest.service"]
        assert any(proxy.host in line and repository in line and "not authorized" in line
                   for line in lines), lines

    check(tmp_path, stack_env)


def test_a_redelivery_of_a_known_release_asks_the_registry_nothing(
        tmp_path: Path, stack_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the deliveries' traffic is counted: without approval settings the release they
    # start ends at its preflight, before its gate reads the image's labels from the registry.
    monkeypatch.delenv("APPROVAL_SIGNING_KEY")

    @scenario
    async def check(s: Stack) -> None:
        proxy, repository = s.env.proxy, s.env.repo("flaky")
        image = s.env.pusher.push_image(repository, "v1.0.0")
        code, _, _ = await s.post(s.acr_push("first", "v1.0.0", image, "flaky"))
        assert code == 202
        assert proxy.stats().by_method == {"GET": 1}  # the tag, which names this manifest
        proxy.reset_stats()
        proxy.inject(503, times=100)  # were it asked, it would fail the delivery
        code, body, _ = await s.post(s.acr_push("again", "v1.0.0", image, "flaky"))
        assert code == 200 and body["events"][0]["outcome"] == "duplicate"
        assert proxy.stats().requests == 0
        ended = await s.until(release_id("flaky", image), "Completed", "Failed")
        assert "approval" in ended["output"]["reason"]
        assert proxy.stats().requests == 0

    check(tmp_path, stack_env)


@scenario
async def test_the_native_event_grid_trigger_raises_when_the_registry_cannot_answer(
        s: Stack) -> None:
    url = f"{s.host.base_url}/runtime/webhooks/eventgrid?functionName=registry_event_grid"
    event = json.loads(s.payload("eventgrid_push.json", MADE_UP))
    event[0]["data"]["target"]["repository"] = s.env.repo("down")
    event[0]["data"]["request"]["host"] = s.env.down_host
    headers = {"aeg-event-type": "Notification", "Content-Type": "application/json"}
    async with s.http.post(url, data=json.dumps(event), headers=headers) as response:
        assert response.status == 500  # so Event Grid delivers it again
    assert s.ledger.events(service="down") == []
    assert s.ledger.digest_claim("down", MADE_UP) is None and s.instances() == []


@scenario
async def test_the_native_event_grid_trigger_records_a_rejection(s: Stack) -> None:
    url = f"{s.host.base_url}/runtime/webhooks/eventgrid?functionName=registry_event_grid"
    s.push("delivery", "v1.4.2")
    headers = {"aeg-event-type": "Notification", "Content-Type": "application/json"}
    async with s.http.post(url, data=s.payload("eventgrid_push.json", MADE_UP),
                           headers=headers) as response:
        assert response.status in (200, 202)
    (recorded,) = s.ledger.events(service="delivery")
    assert (recorded.event_id, recorded.outcome) == ("eg-1", "rejected")
    await assert_nothing_started(s, "delivery", MADE_UP)
