"""One orchestrator episode: replay the history through the real Durable SDK.

The SDK's own `Orchestrator.handle` runs the user's generator over the history.
A recording context notes every task the generator yields (with its sequence
id), which tells the engine what work is new and lets it check the replay
against the history. Does no I/O: the engine persists what this returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.actions.NoOpAction import NoOpAction
from azure.durable_functions.models.DurableOrchestrationContext import (
    DurableOrchestrationContext,
)
from azure.durable_functions.models.ReplaySchema import ReplaySchema
from azure.durable_functions.models.Task import AtomicTask, RetryAbleTask, TaskBase, TaskState
from azure.durable_functions.orchestrator import Orchestrator

from .history import SCHEDULING_TYPES, iso

TaskKind = Literal["activity", "timer", "suborchestration"]
_ERROR_MARKER = "$OutOfProcData$:"
_RETRY_TIMER = "-WithRetry timer"

_KIND_BY_ACTION = {
    ActionType.CALL_ACTIVITY: "activity",
    ActionType.CALL_ACTIVITY_WITH_RETRY: "activity",
    ActionType.CALL_SUB_ORCHESTRATOR: "suborchestration",
    ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY: "suborchestration",
    ActionType.CREATE_TIMER: "timer",
}
_UNSUPPORTED = {
    ActionType.CALL_ENTITY: "durable entities (call_entity)",
    ActionType.SIGNAL_ENTITY: "durable entities (signal_entity)",
    ActionType.CALL_HTTP: "durable HTTP (call_http)",
}


class NonDeterminismError(Exception):
    """The replayed orchestrator no longer matches its recorded history."""


class UnsupportedFeatureError(Exception):
    """The orchestrator used a Durable feature devhost does not run."""


@dataclass(frozen=True)
class NewTask:
    """Work the orchestrator asked for in this episode."""

    task_id: int
    kind: TaskKind
    name: str = ""
    input_json: str | None = None
    fire_at: datetime | None = None
    instance_id: str | None = None
    cancelled: bool = False
    version: str | None = None  # a sub-orchestration's explicit version, if the caller named one


@dataclass
class Episode:
    """What one replay decided."""

    done: bool = False
    output_json: str | None = None
    error: str | None = None
    custom_status_json: str | None = None
    continue_as_new: bool = False
    continue_input_json: str | None = None
    new_tasks: list[NewTask] = field(default_factory=list)
    cancelled_timers: list[int] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.error is not None


class _RecordingContext(DurableOrchestrationContext):
    """The SDK's context, noting every atomic task that receives a sequence id."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recorded: dict[int, AtomicTask] = {}

    def _add_to_open_tasks(self, task: TaskBase) -> None:
        super()._add_to_open_tasks(task)
        if isinstance(task, AtomicTask) and isinstance(task.id, int) and task.id >= 0:
            self.recorded[task.id] = task


def run_episode(orchestrator: Callable[..., Any], *, instance_id: str,
                parent_instance_id: str | None, input_json: str | None,
                history: list[dict[str, Any]], new_from: int, now: datetime,
                input_type: type | None = None) -> Episode:
    """Replay `history` (events from index `new_from` on are new) and say what comes next."""
    events = [{**e, "IsPlayed": i < new_from} for i, e in enumerate(history)]
    context = _RecordingContext(
        history=events, instanceId=instance_id, isReplaying=new_from > 0,
        parentInstanceId=parent_instance_id, input=input_json,
        upperSchemaVersion=ReplaySchema.V3.value)
    context._input_expected_type = input_type
    try:
        state = json.loads(Orchestrator(orchestrator).handle(context))
    except Exception as failure:  # the SDK raises the user's exception with the state attached
        message, _, _ = str(failure).partition(_ERROR_MARKER)
        return Episode(done=True, error=message.strip() or type(failure).__name__)

    try:
        new_tasks, cancelled = _plan(context, history, instance_id, now)
    except (NonDeterminismError, UnsupportedFeatureError) as problem:
        return Episode(done=True, error=f"{type(problem).__name__}: {problem}")

    episode = Episode(
        custom_status_json=_dumps_or_none(state.get("customStatus")),
        new_tasks=new_tasks, cancelled_timers=cancelled)
    if context.will_continue_as_new:
        episode.done = episode.continue_as_new = True
        episode.continue_input_json = _continue_as_new_input(state)
    elif state.get("isDone"):
        episode.done = True
        episode.output_json = json.dumps(state.get("output"))
    return episode


def _plan(context: _RecordingContext, history: list[dict[str, Any]], instance_id: str,
          now: datetime) -> tuple[list[NewTask], list[int]]:
    """Compare the recorded tasks with the history; return new work and cancelled timers."""
    scheduled = {e["EventId"]: e for e in history if e["EventType"] in SCHEDULING_TYPES}
    new_tasks: list[NewTask] = []
    cancelled: list[int] = []
    for task_id, task in sorted(context.recorded.items()):
        wanted = _describe(task, task_id, instance_id, now)
        recorded = scheduled.pop(task_id, None)
        timer_cancelled = wanted.kind == "timer" and getattr(task, "is_cancelled", False)
        if recorded is not None:
            _check_matches(wanted, recorded)
            if timer_cancelled and task.state is TaskState.RUNNING:
                cancelled.append(task_id)
        elif task.state is TaskState.RUNNING:
            new_tasks.append(_with_cancelled(wanted) if timer_cancelled else wanted)
    if scheduled and not context.will_continue_as_new:
        task_id, lost = min(scheduled.items())
        raise NonDeterminismError(
            f"history has {SCHEDULING_TYPES[lost['EventType']]} "
            f"{lost.get('Name') or ''!r} as task {task_id}, "
            "but the replayed orchestrator never scheduled it")
    return new_tasks, cancelled


def _describe(task: AtomicTask, task_id: int, instance_id: str, now: datetime) -> NewTask:
    action = task._get_action()
    if isinstance(action, NoOpAction):  # the SDK's hidden steps of a *_with_retry call
        parent = task.parent
        if not isinstance(parent, RetryAbleTask):
            raise UnsupportedFeatureError(f"task {task_id} has no retryable parent")
        if action.metadata == _RETRY_TIMER:
            interval = parent.retry_options.first_retry_interval_in_milliseconds
            delay = timedelta(milliseconds=interval)
            return NewTask(task_id, "timer", fire_at=now + delay)
        action = parent.children[0]._get_action()
    action_type = action.action_type
    if action_type in _UNSUPPORTED:
        raise UnsupportedFeatureError(f"devhost does not run {_UNSUPPORTED[action_type]}")
    kind = _KIND_BY_ACTION.get(action_type)
    if kind is None:
        raise UnsupportedFeatureError(f"unknown durable action type {action_type}")
    if kind == "timer":
        return NewTask(task_id, "timer", fire_at=action.fire_at)
    payload = action.to_json()
    child_id = payload.get("instanceId") if kind == "suborchestration" else None
    if kind == "suborchestration" and not child_id:
        child_id = f"{instance_id}:{task_id:04X}"
    return NewTask(task_id, kind, name=payload["functionName"],
                   input_json=payload.get("input"), instance_id=child_id,
                   version=payload.get("version") if kind == "suborchestration" else None)


def _check_matches(wanted: NewTask, recorded: dict[str, Any]) -> None:
    recorded_kind = SCHEDULING_TYPES[recorded["EventType"]]
    recorded_name = recorded.get("Name") or ""
    if recorded_kind != wanted.kind or (wanted.kind != "timer" and recorded_name != wanted.name):
        raise NonDeterminismError(
            f"task {wanted.task_id} was {recorded_kind} {recorded_name!r} in the history, "
            f"but the replay scheduled {wanted.kind} {wanted.name!r}; "
            "orchestrator code changed while an instance was running")


def _with_cancelled(task: NewTask) -> NewTask:
    return NewTask(task.task_id, task.kind, fire_at=task.fire_at, cancelled=True)


def _continue_as_new_input(state: dict[str, Any]) -> str | None:
    for action in _flatten(state.get("actions") or []):
        if action.get("actionType") == ActionType.CONTINUE_AS_NEW:
            return action.get("input")
    return None


def _flatten(actions: list[Any]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for item in actions:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        elif isinstance(item, dict):
            flat.append(item)
            flat.extend(_flatten(item.get("compoundActions") or []))
    return flat


def _dumps_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


__all__ = ["Episode", "NewTask", "NonDeterminismError", "UnsupportedFeatureError",
           "run_episode", "iso"]
