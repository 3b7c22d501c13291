"""`ContextIdGenerator`: the tracer's id source, which hands out the deterministic ids a
caller put in a context variable, and random ones otherwise (spans of other code)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

# (trace id, span id) the next span takes; None: random ids.
_NEXT: ContextVar[tuple[int, int] | None] = ContextVar("telemetry_next_ids", default=None)


class ContextIdGenerator(IdGenerator):
    """Ids from `next_ids(...)` when set, else random ones."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        ids = _NEXT.get()
        return ids[1] if ids is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        ids = _NEXT.get()
        return ids[0] if ids is not None else self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return False  # derived from the release id (sampling must not read it as random)


@contextmanager
def next_ids(trace_id: int, span_id: int) -> Iterator[None]:
    """The span started inside this block takes these ids."""
    token = _NEXT.set((trace_id, span_id))
    try:
        yield
    finally:
        _NEXT.reset(token)
