"""The ids the next span takes: a context variable set around a write (`next_ids`) and read by
the tracer provider's id generator (generator.py). No SDK import: the orchestrators load it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# (trace id, span id) the next span takes; None: random ids.
NEXT: ContextVar[tuple[int, int] | None] = ContextVar("telemetry_next_ids", default=None)


@contextmanager
def next_ids(trace_id: int, span_id: int) -> Iterator[None]:
    """The span started inside this block takes these ids."""
    token = NEXT.set((trace_id, span_id))
    try:
        yield
    finally:
        NEXT.reset(token)
