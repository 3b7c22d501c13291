"""Every shape a registry event arrives in, normalised to `RegistryEvent`.

ACR webhooks (push, delete, quarantine, chart_push, chart_delete, ping), OCI
distribution notification envelopes, Event Grid deliveries (Event Grid schema
and CloudEvents 1.0, single or batched). Malformed input raises `PayloadError`
with a one-line reason; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.json_input import JsonInputError, read_json

ACR_EVENT_TYPES = {
    "Microsoft.ContainerRegistry.ImagePushed": "push",
    "Microsoft.ContainerRegistry.ImageDeleted": "delete",
    "Microsoft.ContainerRegistry.ChartPushed": "chart_push",
    "Microsoft.ContainerRegistry.ChartDeleted": "chart_delete",
}
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
MAX_EVENTS = 1000
MAX_BODY = 1024 * 1024


class PayloadError(ValueError):
    """The delivery is not one of the shapes we accept; the message is one line."""


@dataclass(frozen=True)
class RegistryEvent:
    """One registry event, whatever shape it arrived in."""

    event_id: str
    source: str
    action: str
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    media_type: str | None = None
    timestamp: datetime | None = None
    actor: str | None = None  # who pushed, when the registry says (`actor.name`)
    # Whether the tag still names the digest: set by ingestion from the registry, never
    # from the delivery; None until the registry was asked.
    tag_current: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"eventId": self.event_id, "source": self.source, "action": self.action,
                "registry": self.registry, "repository": self.repository, "tag": self.tag,
                "digest": self.digest, "mediaType": self.media_type,
                "timestamp": self.timestamp.isoformat() if self.timestamp else None,
                "actor": self.actor, "tagCurrent": self.tag_current}


@dataclass(frozen=True)
class Delivery:
    """A parsed request body: events, or an Event Grid validation code to echo."""

    events: tuple[RegistryEvent, ...] = ()
    validation_code: str | None = None


def parse_body(body: bytes, *, event_type_header: str | None = None) -> Delivery:
    """Parse a webhook body of any accepted shape."""
    try:
        document = read_json(body, limit=MAX_BODY, what="body")
    except JsonInputError as bad:
        raise PayloadError(str(bad)) from None
    if isinstance(document, list):
        return _parse_list(document)
    if not isinstance(document, dict):
        raise PayloadError("body must be a JSON object or array")
    if "specversion" in document:
        return Delivery(events=tuple(_cloud_event(document)))
    if "events" in document:
        return Delivery(events=tuple(_oci_envelope(document)))
    if "eventType" in document:
        return _parse_list([document])
    return Delivery(events=(_acr_webhook(document),))


def parse_event_grid_event(event_id: str, event_type: str, data: Any,
                           event_time: datetime | None = None) -> RegistryEvent | None:
    """An event from the native Event Grid binding; None for types we do not read."""
    action = ACR_EVENT_TYPES.get(event_type)
    if action is None:
        return None
    return _from_acr_data(_text(event_id, "id"), "event-grid", action, _object(data, "data"),
                          event_time)


def _parse_list(items: list[Any]) -> Delivery:
    if len(items) > MAX_EVENTS:
        raise PayloadError(f"too many events in one delivery ({len(items)} > {MAX_EVENTS})")
    events: list[RegistryEvent] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError(f"event {index} is not a JSON object")
        if "specversion" in item:
            events.extend(_cloud_event(item))
            continue
        event_type = item.get("eventType")
        if event_type == VALIDATION_EVENT:
            if len(items) != 1:
                raise PayloadError("a subscription validation event must be the delivery's"
                                   " only event")
            code = _object(item.get("data"), "data").get("validationCode")
            return Delivery(validation_code=_text(code, "data.validationCode"))
        if not isinstance(event_type, str):
            raise PayloadError(f"event {index} has no eventType")
        event_time = _time(item.get("eventTime"))
        event_id = _text(item.get("id"), "id")
        event = parse_event_grid_event(event_id, event_type, item.get("data"), event_time)
        if event is None:
            events.append(RegistryEvent(event_id, "event-grid", f"unhandled:{event_type}", "",
                                        ""))
        else:
            events.append(event)
    return Delivery(events=tuple(events))


def _cloud_event(item: dict[str, Any]) -> list[RegistryEvent]:
    if item.get("specversion") != "1.0":
        raise PayloadError(f"unsupported CloudEvents specversion {item.get('specversion')!r}")
    event_type = _text(item.get("type"), "type")
    action = ACR_EVENT_TYPES.get(event_type)
    if action is None:
        return [RegistryEvent(_text(item.get("id"), "id"), "cloudevents",
                              f"unhandled:{event_type}", "", "")]
    return [_from_acr_data(_text(item.get("id"), "id"), "cloudevents", action,
                           _object(item.get("data"), "data"), _time(item.get("time")))]


def _oci_envelope(document: dict[str, Any]) -> list[RegistryEvent]:
    items = document.get("events")
    if not isinstance(items, list):
        raise PayloadError("'events' must be an array")
    if len(items) > MAX_EVENTS:
        raise PayloadError(f"too many events in one delivery ({len(items)} > {MAX_EVENTS})")
    events = []
    for index, item in enumerate(items):
        item = _object(item, f"events[{index}]")
        target = _object(item.get("target"), f"events[{index}].target")
        events.append(RegistryEvent(
            event_id=_text(item.get("id"), f"events[{index}].id"),
            source="oci-notification",
            action=_text(item.get("action"), f"events[{index}].action"),
            registry=_request_host(item),
            repository=_text(target.get("repository"), f"events[{index}].target.repository"),
            tag=_optional_text(target.get("tag")),
            digest=_optional_text(target.get("digest")),
            media_type=_optional_text(target.get("mediaType")),
            timestamp=_time(item.get("timestamp")), actor=_actor(item)))
    return events


def _acr_webhook(document: dict[str, Any]) -> RegistryEvent:
    action = _text(document.get("action"), "action")
    if action == "ping":
        return RegistryEvent(_text(document.get("id"), "id"), "acr-webhook", "ping", "", "")
    return _from_acr_data(_text(document.get("id"), "id"), "acr-webhook", action, document,
                          _time(document.get("timestamp")))


def _from_acr_data(event_id: str, source: str, action: str, data: dict[str, Any],
                   timestamp: datetime | None) -> RegistryEvent:
    target = _object(data.get("target"), "target")
    return RegistryEvent(
        event_id=event_id, source=source, action=action,
        registry=_request_host(data),
        repository=_text(target.get("repository"), "target.repository"),
        tag=_optional_text(target.get("tag")), digest=_optional_text(target.get("digest")),
        media_type=_optional_text(target.get("mediaType")), timestamp=timestamp,
        actor=_actor(data))


def _request_host(item: dict[str, Any]) -> str:
    """`request.host` as text, or "" when the event carries no request object."""
    request = item.get("request")
    return str((request.get("host") if isinstance(request, dict) else None) or "")


def _actor(item: dict[str, Any]) -> str | None:
    """`actor.name`: who pushed (ACR: the user or token; OCI: often empty); else None."""
    actor = item.get("actor")
    name = actor.get("name") if isinstance(actor, dict) else None
    return name.strip() if isinstance(name, str) and name.strip() and len(name) <= 512 else None


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{field} must be a JSON object")
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"{field} must be a non-empty string")
    if len(value) > 512:
        raise PayloadError(f"{field} is longer than 512 characters")
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value and len(value) <= 512 else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
