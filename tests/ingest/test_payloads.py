"""Every documented delivery shape parses to RegistryEvents; anything else is a PayloadError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ingest.payloads import Delivery, PayloadError, parse_body

PAYLOADS = Path(__file__).parent / "payloads"
DIGEST = "sha256:" + "a" * 64


def parse(name: str) -> Delivery:
    return parse_body((PAYLOADS / name).read_bytes())


def test_acr_push() -> None:
    (event,) = parse("acr_push.json").events
    assert (event.source, event.action, event.registry, event.repository, event.tag,
            event.digest) == ("acr-webhook", "push", "myacr.azurecr.io", "delivery", "v1.4.2",
                              DIGEST)
    assert event.event_id == "cb8c3971-9adc-488b-bdd8-43cbb4974ff5"
    assert event.timestamp is not None and event.timestamp.year == 2026


@pytest.mark.parametrize("name, action, tag", [
    ("acr_delete.json", "delete", None),
    ("acr_quarantine.json", "quarantine", "v1.4.2"),
    ("acr_chart_push.json", "chart_push", "wordpress-5.4.0.tgz"),
    ("acr_chart_delete.json", "chart_delete", "wordpress-5.4.0.tgz"),
])
def test_other_acr_actions(name: str, action: str, tag: str | None) -> None:
    (event,) = parse(name).events
    assert (event.action, event.tag) == (action, tag)


def test_acr_ping_needs_no_target() -> None:
    (event,) = parse("acr_ping.json").events
    assert (event.action, event.repository) == ("ping", "")


def test_oci_envelope_has_blob_and_manifest_events() -> None:
    blob, manifest = parse("oci_envelope.json").events
    assert (blob.source, blob.tag, blob.media_type) == ("oci-notification", None,
                                                        "application/octet-stream")
    assert (manifest.tag, manifest.digest, manifest.registry) == ("v1.4.2", DIGEST,
                                                                  "127.0.0.1:5000")


def test_event_grid_schema_push() -> None:
    (event,) = parse("eventgrid_push.json").events
    assert (event.source, event.event_id, event.action, event.repository, event.tag) == (
        "event-grid", "eg-1", "push", "delivery", "v1.4.2")


def test_event_grid_validation_returns_the_code() -> None:
    delivery = parse("eventgrid_validation.json")
    assert delivery.validation_code == "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    assert delivery.events == ()


def test_cloud_events_single_and_batch() -> None:
    (single,) = parse("cloudevent_push.json").events
    assert (single.source, single.event_id, single.media_type) == (
        "cloudevents", "ce-1", "application/vnd.oci.image.index.v1+json")
    pushed, deleted = parse("cloudevents_batch.json").events
    assert (pushed.action, pushed.tag) == ("push", "latest")
    assert deleted.action == "delete"


def test_unknown_event_grid_types_are_kept_as_unhandled() -> None:
    body = json.dumps([{"id": "x", "eventType": "Microsoft.Storage.BlobCreated", "data": {}}])
    (event,) = parse_body(body.encode()).events
    assert event.action == "unhandled:Microsoft.Storage.BlobCreated"


@pytest.mark.parametrize("body, reason", [
    (b"", "body is not valid JSON"),
    (b"\xff\xfe", "body is not UTF-8 text"),
    (b"42", "must be a JSON object or array"),
    (b'{"action": "push"}', "id must be a non-empty string"),
    (b'{"id": "1", "action": "push"}', "target must be a JSON object"),
    (b'{"id": "1", "action": "push", "target": {"repository": ""}}',
     "target.repository must be a non-empty string"),
    (b'{"events": {}}', "'events' must be an array"),
    (b'{"events": [{"id": "1", "action": "push", "target": []}]}',
     "events[0].target must be a JSON object"),
    (b'[1]', "event 0 is not a JSON object"),
    (b'[{"id": "1"}]', "event 0 has no eventType"),
    (b'{"specversion": "0.3", "id": "1", "type": "x"}', "unsupported CloudEvents specversion"),
    (json.dumps([{"id": "1", "eventType": "E"}] * 1001).encode(), "too many events"),
    (b'{"id": "' + b"x" * 600 + b'", "action": "ping"}', "longer than 512"),
])
def test_malformed_bodies_give_a_one_line_reason(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as refused:
        parse_body(body)
    assert reason in str(refused.value) and "\n" not in str(refused.value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "action", "target", "events", "eventType", "data",
                         "specversion", "type", "repository", "tag", "digest", "request",
                         "host", "validationCode", "mediaType"]), inner, max_size=5),
    max_leaves=20).map(lambda value: json.dumps(value).encode())))
def test_any_bytes_parse_or_raise_a_payload_error(body: bytes) -> None:
    try:
        parse_body(body)
    except PayloadError:
        pass


# Who pushed ----------------------------------------------------------------------------------

def with_actor(name: str, actor: object) -> bytes:
    document = json.loads((PAYLOADS / name).read_text())
    document["actor"] = actor
    return json.dumps(document).encode()


@pytest.mark.parametrize("actor, expected", [
    ({"name": "ci-bot"}, "ci-bot"),
    ({"name": "  ann@example.com "}, "ann@example.com"),
    ({"name": ""}, None),
    ({}, None),
    ("ci-bot", None),
    ({"name": 7}, None),
])
def test_acr_webhook_actor(actor: object, expected: str | None) -> None:
    (event,) = parse_body(with_actor("acr_push.json", actor)).events
    assert event.actor == expected


def test_push_without_actor_has_none() -> None:
    (event,) = parse("acr_push.json").events
    assert event.actor is None
    (event,) = parse("cloudevent_push.json").events
    assert event.actor is None


def test_event_grid_and_cloud_events_actor() -> None:
    (event,) = parse("eventgrid_push.json").events
    assert event.actor == "ci-bot"
    document = json.loads((PAYLOADS / "cloudevent_push.json").read_text())
    document["data"]["actor"] = {"name": "release-bot"}
    (event,) = parse_body(json.dumps(document).encode()).events
    assert event.actor == "release-bot"


def test_oci_envelope_actor_often_empty() -> None:
    blob, manifest = parse("oci_envelope.json").events
    assert (blob.actor, manifest.actor) == (None, None)
    document = json.loads((PAYLOADS / "oci_envelope.json").read_text())
    document["events"][1]["actor"] = {"name": "skopeo-user"}
    _, manifest = parse_body(json.dumps(document).encode()).events
    assert manifest.actor == "skopeo-user"
    assert manifest.to_dict()["actor"] == "skopeo-user"
