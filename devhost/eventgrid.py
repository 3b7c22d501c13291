"""Event Grid webhook: `/runtime/webhooks/eventgrid?functionName=NAME`.

Like the Functions host's Event Grid extension: answers the subscription
validation handshake itself (header `aeg-event-type: SubscriptionValidation`)
and the CloudEvents abuse-protection `OPTIONS`, accepts an Event Grid schema
array, a CloudEvents batch or a single CloudEvent, invokes the function once
per event (concurrently), and answers 202, or 500 if any invocation failed so
Event Grid retries. Unlike the host, a POST without `aeg-event-type` is taken
as a notification (the host answers 400) so curl tests work. Function keys are
not checked.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from devhost.app_loader import EVENT_GRID_TRIGGER, FunctionIndex
from devhost.http_server import json_error
from devhost.invoker import Invoker

log = logging.getLogger("devhost.eventgrid")

VALIDATION_EVENT_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"
HEADER_EVENT_TYPE = "aeg-event-type"


class EventGridPayloadError(ValueError):
    """A body that is not Event Grid or CloudEvents JSON."""


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """The events of a delivery: a JSON array of objects, or one object."""
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EventGridPayloadError(f"malformed JSON: {error}") from None
    events = payload if isinstance(payload, list) else [payload]
    if not events:
        raise EventGridPayloadError("the delivery holds no events")
    for position, event in enumerate(events):
        if not isinstance(event, dict):
            raise EventGridPayloadError(f"event {position} is a {type(event).__name__}, "
                                        "not a JSON object")
        if "specversion" not in event and "eventType" not in event:
            raise EventGridPayloadError(f"event {position} is neither Event Grid schema "
                                        "(eventType) nor a CloudEvent (specversion)")
    return events


def validation_code(events: list[dict[str, Any]]) -> str | None:
    """The code of a subscription validation event (data may be double-encoded)."""
    for event in events:
        if VALIDATION_EVENT_TYPE not in (event.get("eventType"), event.get("type")):
            continue
        data = event.get("data")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                return None
        code = data.get("validationCode") if isinstance(data, dict) else None
        return str(code) if code else None
    return None


def decode_event(event: dict[str, Any]) -> Any:
    """`func.EventGridEvent` or `func.CloudEvent`, through the SDK's converter."""
    datum = meta.Datum(json.dumps(event), "json")
    return EventGridEventInConverter.decode(datum, trigger_metadata=None)


class EventGridWebhook:
    """The aiohttp handler for Event Grid deliveries."""

    def __init__(self, index: FunctionIndex, invoker: Invoker) -> None:
        self.index = index
        self.invoker = invoker

    async def handle(self, request: web.Request) -> web.Response:
        """Handshake, abuse protection or delivery, for `?functionName=NAME`."""
        name = request.query.get("functionName", "")
        function = self.index.get(name)
        if function is None or function.trigger_type != EVENT_GRID_TRIGGER:
            known = [f.name for f in self.index.of_trigger(EVENT_GRID_TRIGGER)]
            return json_error(404, "Not Found", f"cannot find Event Grid function "
                                                f"'{name}' (available: {known})")
        if request.method == "OPTIONS":
            return self._abuse_protection(request)
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST, OPTIONS"})
        kind = request.headers.get(HEADER_EVENT_TYPE, "").lower()
        if kind == "unsubscribe":
            return web.Response(status=202)
        if kind not in ("", "notification", "subscriptionvalidation"):
            return json_error(400, "Bad Request", f"unknown {HEADER_EVENT_TYPE} "
                                                  f"'{request.headers[HEADER_EVENT_TYPE]}'")
        try:
            events = parse_events(await request.read())
        except EventGridPayloadError as error:
            return json_error(400, "Bad Request", str(error))
        code = validation_code(events)
        if kind == "subscriptionvalidation" or (not kind and code):
            if code is None:
                return json_error(400, "Bad Request", "subscription validation without "
                                                      "data.validationCode")
            log.info("Event Grid subscription validated for function %s", function.name)
            return web.json_response({"validationResponse": code})
        try:
            values = [decode_event(e) for e in events]
        except (ValueError, TypeError) as error:
            return json_error(400, "Bad Request", f"cannot decode event: {error}")
        results = await asyncio.gather(
            *(self.invoker.invoke(function, v) for v in values), return_exceptions=True)
        failed = sum(isinstance(r, BaseException) for r in results)
        if failed:
            return json_error(500, "Internal Server Error",
                              f"{failed} of {len(events)} events failed in {function.name}; "
                              "see the devhost log")
        return web.Response(status=202)

    @staticmethod
    def _abuse_protection(request: web.Request) -> web.Response:
        origin = request.headers.get("WebHook-Request-Origin")
        if not origin:
            return json_error(400, "Bad Request", "OPTIONS without WebHook-Request-Origin")
        return web.Response(status=200, headers={"WebHook-Allowed-Origin": origin,
                                                 "WebHook-Allowed-Rate": "*",
                                                 "Allow": "POST, OPTIONS"})
