"""`ContextIdGenerator`: the tracer's id source, which hands out the deterministic ids a
caller put in the context (context_ids.py), and random ones otherwise (spans of other code)."""

from __future__ import annotations

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from shared.telemetry.context_ids import NEXT


class ContextIdGenerator(IdGenerator):
    """Ids from `context_ids.next_ids(...)` when set, else random ones."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        ids = NEXT.get()
        return ids[1] if ids is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        ids = NEXT.get()
        return ids[0] if ids is not None else self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return False  # derived from the release id (sampling must not read it as random)
