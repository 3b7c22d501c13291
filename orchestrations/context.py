"""`OrchestrationContext`: the part of Durable Functions' orchestration context our
orchestrators use, typed (the SDK ships no type information, so mypy sees it as `Any`).

Orchestrators and their helpers take this Protocol; the SDK's `DurableOrchestrationContext`
fits it (tests/releases/test_orchestration_context.py checks the SDK against it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import azure.durable_functions as df


class Task(Protocol):
    """A scheduled activity, sub-orchestration, event, timer or group of them."""

    @property
    def result(self) -> Any: ...


class Timer(Task, Protocol):
    """A durable timer; cancelled once something else won the race."""

    def cancel(self) -> None: ...


class OrchestrationContext(Protocol):
    """What an orchestrator may ask of its context: inputs, time, and tasks to yield."""

    @property
    def current_utc_datetime(self) -> datetime: ...

    @property
    def instance_id(self) -> str: ...

    @property
    def version(self) -> str | None: ...

    @property
    def is_replaying(self) -> bool:
        """True while the code runs over recorded history (telemetry emits nothing then)."""

    def get_input(self) -> Any: ...

    def call_activity(self, name: str, input_: Any = None) -> Task: ...

    def call_activity_with_retry(self, name: str, retry_options: df.RetryOptions,
                                 input_: Any = None) -> Task: ...

    def call_sub_orchestrator(self, name: str, input_: Any = None,
                              instance_id: str | None = None) -> Task: ...

    def create_timer(self, fire_at: datetime) -> Timer: ...

    def wait_for_external_event(self, name: str) -> Task: ...

    def task_any(self, activities: Sequence[Task]) -> Task: ...

    def task_all(self, activities: Sequence[Task]) -> Task: ...

    def set_custom_status(self, status: Any) -> None: ...
