"""`emit`: one finished span of a release, written after the fact with its own start and end
times and its deterministic ids (shared/telemetry/ids.py). Never raises."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from shared.telemetry import ids
from shared.telemetry.context_ids import next_ids
from shared.telemetry.setup import pipeline

log = logging.getLogger(__name__)
FAILED = frozenset({"Failed", "RolledBack", "failed", "inconclusive"})


def emit(name: str, release_id: str, span_id: int, parent_span_id: int | None,
         start: datetime, end: datetime, attributes: Mapping[str, str | int | float]) -> None:
    """Export a finished span `name` of `release_id`'s trace (a root when no parent)."""
    tracer = pipeline().tracer
    if tracer is None:
        return
    try:
        trace_id = ids.trace_id(release_id)
        parent = Context()  # never the ambient context: the release's trace only
        if parent_span_id is not None:
            parent = set_span_in_context(NonRecordingSpan(SpanContext(
                trace_id, parent_span_id, is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED))), parent)
        with next_ids(trace_id, span_id):
            span = tracer.start_span(name, context=parent, kind=SpanKind.INTERNAL,
                                     attributes=dict(attributes),
                                     start_time=_nanoseconds(start))
        if attributes.get("release.outcome") in FAILED:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=_nanoseconds(max(start, end)))
    except Exception as error:  # noqa: BLE001 (telemetry must never fail a release)
        log.warning("span %s of %s not emitted: %s", name, release_id, type(error).__name__)


def _nanoseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)
