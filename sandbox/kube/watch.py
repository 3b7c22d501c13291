"""Watches over the store's event history: what one `?watch=true` stream has still to send.

A watch starts from a resourceVersion (events after it) or, with `sendInitialEvents=true` or no
resourceVersion, from the current objects as ADDED events; `sendInitialEvents` ends them with a
BOOKMARK annotated `k8s.io/initial-events-end`. `poll` returns the JSON lines of the writes
since the last poll that match the watch's namespace, label and field selectors. A
resourceVersion older than the store's history gets an ERROR event (410 Expired) and the end
of the stream, as from the apiserver. The HTTP server does the streaming and the waiting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from sandbox.kube.discovery import ResourceType
from sandbox.kube.objects import (
    ApiError,
    JsonDict,
    bad_request,
    field_matches,
    matches,
    parse_field_selector,
    parse_selector,
)
from sandbox.kube.store import Store

MAX_SECONDS = 1800.0  # the apiserver picks 30-60 min when the client names no timeout
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass
class Watch:
    """One open watch: its filters, the last resourceVersion sent, and what is pending."""

    rt: ResourceType
    namespace: str | None
    selector: list[tuple[str, str, frozenset[str]]]
    fields: list[tuple[str, bool, str]]
    cursor: int
    seconds: float
    pending: list[bytes] = field(default_factory=list)
    closed: bool = False

    @classmethod
    def start(cls, store: Store, rt: ResourceType, namespace: str | None,
              query: Mapping[str, str]) -> Watch:
        """A watch as `query` asks for it (raises ApiError 400 for malformed parameters)."""
        version = query.get("resourceVersion", "")
        if version and not version.isdigit():
            raise bad_request(f'invalid resource version "{version}"')
        timeout = query.get("timeoutSeconds", "")
        if timeout and not timeout.isdigit():
            raise bad_request(f'invalid timeoutSeconds "{timeout}"')
        seconds = min(float(timeout), MAX_SECONDS) if timeout else MAX_SECONDS
        watch = cls(rt, namespace, parse_selector(query.get("labelSelector", "")),
                    parse_field_selector(query.get("fieldSelector", "")), store.version, seconds)
        initial = query.get("sendInitialEvents") in ("true", "1")
        if initial or version in ("", "0"):
            for obj in store.list(rt.gr.resource, namespace):
                if watch._selects(obj):
                    watch.pending.append(_line("ADDED", rt.typed(obj)))
            if initial and query.get("allowWatchBookmarks") in ("true", "1"):
                watch.pending.append(_line("BOOKMARK", rt.typed({"metadata": {
                    "resourceVersion": store.resource_version,
                    "annotations": {INITIAL_EVENTS_END: "true"},
                }})))
        else:
            watch.cursor = int(version)
        return watch

    def _selects(self, obj: JsonDict) -> bool:
        metadata = obj["metadata"]
        return ((self.namespace is None or metadata.get("namespace") == self.namespace)
                and matches(self.selector, metadata.get("labels"))
                and field_matches(self.fields, obj))

    def poll(self, store: Store) -> list[bytes]:
        """The lines to send now (initial events first); sets `closed` after an ERROR."""
        lines, self.pending = self.pending, []
        if self.closed:
            return lines
        events = store.events_since(self.cursor)
        if events is None:
            gone = ApiError(410, "Expired",
                            f"too old resource version: {self.cursor} ({store.version})")
            self.closed = True
            return [*lines, _line("ERROR", gone.status())]
        for event in events:
            if event.resource == self.rt.gr.resource and self._selects(event.obj):
                lines.append(_line(event.type, self.rt.typed(event.obj)))
        self.cursor = store.version
        return lines


def _line(kind: str, obj: JsonDict) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
