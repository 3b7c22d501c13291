"""Event Grid webhook over real HTTP: handshakes, both schemas, errors."""

from __future__ import annotations

import json

import pytest

from devhost.eventgrid import EventGridPayloadError, parse_events, validation_code

HOOK = "/runtime/webhooks/eventgrid?functionName="
NOTIFY = {"aeg-event-type": "Notification", "Content-Type": "application/json"}


def eg_event(n: int, **data) -> dict:
    return {"id": f"eg-{n}", "topic": "/subscriptions/x/resourceGroups/rg/providers/acr",
            "subject": f"repo:v{n}", "eventType": "Microsoft.ContainerRegistry.ImagePushed",
            "eventTime": "2026-11-22T04:05:06.1234567Z", "data": {"n": n, **data},
            "dataVersion": "1.0", "metadataVersion": "1"}


def cloud_event(n: int) -> dict:
    return {"specversion": "1.0", "id": f"ce-{n}", "source": "/acr/myacr", "subject": f"s{n}",
            "type": "Microsoft.ContainerRegistry.ImagePushed",
            "time": "2026-11-22T04:05:06Z", "data": {"n": n}}


async def post(session, function: str, body, headers=None) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(HOOK + function, data=data, headers=headers or NOTIFY) as response:
        return response.status, await response.text()


async def received(session) -> list[dict]:
    async with session.get("/api/received") as response:
        return await response.json()


def test_subscription_validation_handshake_does_not_invoke(serve) -> None:
    validation = [{"id": "v1", "topic": "t", "subject": "", "data": {"validationCode": "C0DE-42",
                   "validationUrl": "https://example.invalid"}, "eventType":
                   "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "eventTime": "2026-11-22T04:05:06Z", "dataVersion": "2"}]

    async def scenario(host, session):
        result = await post(session, "on_event", validation,
                            {"aeg-event-type": "SubscriptionValidation"})
        return result, await received(session)

    (status, body), seen = serve("eventgrid_app", scenario)
    assert status == 200
    assert json.loads(body) == {"validationResponse": "C0DE-42"}
    assert seen == []


def test_cloudevents_abuse_protection_options(serve) -> None:
    async def scenario(host, session):
        async with session.options(HOOK + "on_event",
                                   headers={"WebHook-Request-Origin": "eventgrid.azure.net"}) as r:
            good = r.status, r.headers.get("WebHook-Allowed-Origin"), \
                r.headers.get("WebHook-Allowed-Rate")
        async with session.options(HOOK + "on_event") as r:
            missing = r.status
        return good, missing

    good, missing = serve("eventgrid_app", scenario)
    assert good == (200, "eventgrid.azure.net", "*")
    assert missing == 400


def test_event_grid_schema_array_invokes_once_per_event(serve) -> None:
    async def scenario(host, session):
        result = await post(session, "on_event", [eg_event(1), eg_event(2)])
        return result, await received(session)

    (status, _), seen = serve("eventgrid_app", scenario)
    assert status == 202
    assert sorted(e["id"] for e in seen) == ["eg-1", "eg-2"]
    first = next(e for e in seen if e["id"] == "eg-1")
    assert first == {"schema": "eventgrid", "id": "eg-1", "subject": "repo:v1",
                     "type": "Microsoft.ContainerRegistry.ImagePushed",
                     "topic": "/subscriptions/x/resourceGroups/rg/providers/acr",
                     "data": {"n": 1}}


def test_single_cloudevent_and_cloudevents_batch(serve) -> None:
    headers = {"aeg-event-type": "Notification",
               "Content-Type": "application/cloudevents+json; charset=utf-8"}

    async def scenario(host, session):
        single = await post(session, "on_event", cloud_event(1), headers)
        batch = await post(session, "on_event", [cloud_event(2), cloud_event(3)],
                           {"aeg-event-type": "Notification",
                            "Content-Type": "application/cloudevents-batch+json"})
        return single, batch, await received(session)

    single, batch, seen = serve("eventgrid_app", scenario)
    assert single[0] == 202 and batch[0] == 202
    assert sorted(e["id"] for e in seen) == ["ce-1", "ce-2", "ce-3"]
    assert all(e["schema"] == "cloudevents" and e["source"] == "/acr/myacr" for e in seen)
    assert next(e for e in seen if e["id"] == "ce-3")["data"] == {"n": 3}


def test_errors_unknown_function_bad_json_failing_invocation(serve) -> None:
    async def scenario(host, session):
        return {
            "unknown": await post(session, "nope", [eg_event(1)]),
            "not_event_grid": await post(session, "seen", [eg_event(1)]),
            "bad_json": await post(session, "on_event", b"[{not json"),
            "not_events": await post(session, "on_event", [1, 2]),
            "failing": await post(session, "picky", [eg_event(1), eg_event(2, fail=True)]),
            "bad_header": await post(session, "on_event", [eg_event(1)],
                                     {"aeg-event-type": "Bogus"}),
            "unsubscribe": await post(session, "on_event", b"", {"aeg-event-type":
                                                                 "Unsubscribe"}),
            "seen": await received(session),
        }

    got = serve("eventgrid_app", scenario)
    assert got["unknown"][0] == 404
    assert "cannot find Event Grid function 'nope'" in got["unknown"][1]
    assert got["not_event_grid"][0] == 404
    assert got["bad_json"][0] == 400 and "malformed JSON" in got["bad_json"][1]
    assert got["not_events"][0] == 400 and "event 0 is a int" in got["not_events"][1]
    assert got["failing"][0] == 500 and "1 of 2 events failed" in got["failing"][1]
    assert "picky refuses" not in got["failing"][1]
    assert got["bad_header"][0] == 400
    assert got["unsubscribe"][0] == 202
    assert [e["id"] for e in got["seen"]] == ["eg-1"]  # the good event of the failing batch ran


def test_parse_events_shapes() -> None:
    assert parse_events(json.dumps(cloud_event(1)).encode()) == [cloud_event(1)]
    assert len(parse_events(json.dumps([eg_event(1), eg_event(2)]).encode())) == 2
    for body, reason in ((b"[]", "no events"), (b'{"id": 1}', "neither Event Grid"),
                         (b"\xff", "malformed JSON")):
        with pytest.raises(EventGridPayloadError, match=reason):
            parse_events(body)


def test_validation_code_from_either_schema() -> None:
    kind = "Microsoft.EventGrid.SubscriptionValidationEvent"
    assert validation_code([{"eventType": kind, "data": {"validationCode": "A"}}]) == "A"
    assert validation_code([{"type": kind, "specversion": "1.0",
                             "data": json.dumps({"validationCode": "B"})}]) == "B"
    assert validation_code([eg_event(1)]) is None
