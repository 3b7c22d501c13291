"""History events in the shape the Durable Python SDK replays.

Pure builders: each returns a plain dict (`EventType`, `EventId`, `Timestamp`,
plus the fields of its type) that is stored as JSON in the task hub. `IsPlayed`
is added when an episode is assembled, not stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Any


class EventType(IntEnum):
    """The history event types devhost writes (numbers as in DTFx)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


SCHEDULING_TYPES = {
    EventType.TASK_SCHEDULED: "activity",
    EventType.TIMER_CREATED: "timer",
    EventType.SUB_ORCHESTRATION_CREATED: "suborchestration",
}


def iso(when: datetime) -> str:
    """`2026-11-22T04:05:06.123456Z`: the timestamp form the SDK parses."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(kind: EventType, when: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    """One history event of `kind` at `when`."""
    return {"EventType": int(kind), "EventId": event_id, "Timestamp": iso(when), **fields}


def execution_started(when: datetime, name: str, input_json: str | None,
                      parent_instance_id: str | None = None, version: str = "") -> dict[str, Any]:
    """The first event of an execution; the SDK reads `context.version` from its `Version`."""
    fields: dict[str, Any] = {"Name": name, "Input": input_json, "Version": version}
    if parent_instance_id:
        fields["ParentInstance"] = {"OrchestrationInstance": {"InstanceId": parent_instance_id}}
    return event(EventType.EXECUTION_STARTED, when, **fields)


def task_completed(when: datetime, task_id: int, result_json: str | None) -> dict[str, Any]:
    return event(EventType.TASK_COMPLETED, when, TaskScheduledId=task_id, Result=result_json)


def task_failed(when: datetime, task_id: int, reason: str, details: str = "") -> dict[str, Any]:
    return event(EventType.TASK_FAILED, when, TaskScheduledId=task_id, Reason=reason,
                 Details=details)


def sub_orchestration_completed(when: datetime, task_id: int,
                                result_json: str | None) -> dict[str, Any]:
    return event(EventType.SUB_ORCHESTRATION_COMPLETED, when, TaskScheduledId=task_id,
                 Result=result_json)


def sub_orchestration_failed(when: datetime, task_id: int, reason: str,
                             details: str = "") -> dict[str, Any]:
    return event(EventType.SUB_ORCHESTRATION_FAILED, when, TaskScheduledId=task_id,
                 Reason=reason, Details=details)


def timer_fired(when: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return event(EventType.TIMER_FIRED, when, TimerId=timer_id, FireAt=iso(fire_at))


def event_raised(when: datetime, name: str, input_json: str | None) -> dict[str, Any]:
    return event(EventType.EVENT_RAISED, when, Name=name, Input=input_json)
