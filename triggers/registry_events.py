"""`POST /api/registry/events` and the Event Grid trigger: registry events in, releases out.

Accepts ACR webhooks, OCI notification envelopes and Event Grid deliveries (Event
Grid schema with its validation handshake, CloudEvents with the OPTIONS
handshake). Without the bearer token only Event Grid's handshake is answered: its header
and a body that is one validation event, nothing else. Answers 401 without detail,
413 over 1 MiB, 400 with a one-line reason for malformed bodies, 503 while the policy
file is invalid or the registry cannot confirm a pushed image (so Event Grid retries),
202 when a release started and 200 otherwise, with each event's outcome.
"""

from __future__ import annotations

import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints import blueprint
from shared.app_context import app_async_ledger, app_policy_async
from shared.ingest.image_check import RegistryUnreachable
from shared.ingest.payloads import MAX_BODY, PayloadError, parse_body, parse_event_grid_event
from shared.ingest.service import EventOutcome, Ingestor
from shared.ingest.webhook_token import authorized
from shared.policy.errors import PolicyError
from triggers.durable_adapter import ClientDurable
from triggers.http import origin, status_uri
from triggers.responses import error_response, json_response

log = logging.getLogger(__name__)
bp = blueprint()


@bp.route(route="registry/events", methods=["POST", "OPTIONS"])
@bp.durable_client_input(client_name="client")
async def registry_events(req: func.HttpRequest,
                          client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Ingest one delivery of registry events."""
    if req.method == "OPTIONS":
        return _cloud_events_handshake(req)
    body = req.get_body() or b""
    if len(body) > MAX_BODY:
        return error_response(413, f"body is larger than {MAX_BODY} bytes")
    token = authorized(req.headers.get("Authorization"))
    if not token and not _validation_header(req):
        return func.HttpResponse(status_code=401)
    try:
        delivery = parse_body(body)
    except PayloadError as bad:
        return error_response(400, str(bad)) if token else func.HttpResponse(status_code=401)
    if delivery.validation_code is not None:
        return json_response({"validationResponse": delivery.validation_code})
    if not token:  # a handshake header on anything but the handshake's own body
        return func.HttpResponse(status_code=401)
    try:
        ingestor = Ingestor(await app_policy_async(), app_async_ledger(),
                            ClientDurable(client))
    except PolicyError as broken:
        log.error("release policy is invalid; refusing deliveries until fixed:\n%s", broken)
        return error_response(503, "release policy is invalid; see the app log")
    try:
        outcomes = [await ingestor.ingest(event) for event in delivery.events]
    except RegistryUnreachable as unreachable:  # logged by ingestion; the sender retries
        return error_response(503, f"registry {unreachable.registry} could not confirm the"
                                   " pushed image; try again later")
    started = any(o.outcome == "started" for o in outcomes)
    base = origin(req)
    return json_response({"events": [_with_link(o, base) for o in outcomes]},
                         202 if started else 200)


@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def registry_event_grid(event: func.EventGridEvent,
                              client: df.DurableOrchestrationClient) -> None:
    """The native Event Grid binding: the host did the handshake; one event per call.
    Raises when the registry cannot confirm the image, so Event Grid delivers it again."""
    parsed = parse_event_grid_event(event.id, event.event_type, event.get_json(),
                                    event.event_time)
    if parsed is None:
        log.info("Event Grid event %s of type %s is not acted on", event.id, event.event_type)
        return
    ingestor = Ingestor(await app_policy_async(), app_async_ledger(), ClientDurable(client))
    outcome = await ingestor.ingest(parsed)
    log.info("registry event %s: %s (%s)", outcome.event_id, outcome.outcome, outcome.reason)


def _with_link(outcome: EventOutcome, base: str) -> dict[str, Any]:
    """The outcome with the release's status URL (never Durable's, which carries a key)."""
    shown = outcome.to_dict()
    if outcome.release_id:
        shown["statusUri"] = status_uri(base, outcome.release_id)
    return shown


def _validation_header(req: func.HttpRequest) -> bool:
    """Event Grid's handshake header: the one case a body is read without the token."""
    kind: str = req.headers.get("aeg-event-type", "")
    return kind.strip().lower() == "subscriptionvalidation"


def _cloud_events_handshake(req: func.HttpRequest) -> func.HttpResponse:
    origin = req.headers.get("WebHook-Request-Origin")
    if not origin:
        return error_response(400, "OPTIONS needs a WebHook-Request-Origin header")
    return func.HttpResponse(status_code=200, headers={"WebHook-Allowed-Origin": origin,
                                                       "WebHook-Allowed-Rate": "*"})
