"""The SDK's orchestration context fits `OrchestrationContext`, the Protocol mypy checks
our orchestrators against (the SDK has no type information of its own)."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import azure.durable_functions as df
import pytest
from azure.durable_functions.models.actions.CreateTimerAction import CreateTimerAction
from azure.durable_functions.models.Task import TaskBase, TimerTask

from orchestrations.context import OrchestrationContext, Task, Timer


def members(protocol: type) -> dict[str, object]:
    """The protocol's own methods and properties, by name (inherited ones included)."""
    found: dict[str, object] = {}
    for cls in reversed(protocol.__mro__):
        if cls is object or not getattr(cls, "_is_protocol", False):
            continue
        found.update({name: value for name, value in vars(cls).items()
                      if not name.startswith("_")})
    return found


def fits(protocol: type, implementation: object) -> list[str]:
    """What `implementation` (a class, or an instance for attributes set in `__init__`) lacks
    of `protocol`: missing members, properties that are methods, methods that do not accept
    the protocol's parameters by name."""
    problems = []
    for name, member in members(protocol).items():
        if not hasattr(implementation, name):
            problems.append(f"{name} is missing")
            continue
        found = inspect.getattr_static(implementation, name)
        if isinstance(member, property):
            if callable(found) and not isinstance(found, property):
                problems.append(f"{name} is a method, not a property")
            continue
        wanted = [p for p in inspect.signature(member).parameters if p != "self"]
        try:
            inspect.signature(found).bind(None, **{p: None for p in wanted})
        except TypeError as error:
            problems.append(f"{name}({', '.join(wanted)}): {error}")
    return problems


def test_the_sdk_context_has_every_member_with_the_parameters_we_pass() -> None:
    assert members(OrchestrationContext).keys() >= {
        "current_utc_datetime", "call_activity", "create_timer", "task_any"}
    assert fits(OrchestrationContext, df.DurableOrchestrationContext) == []


@pytest.mark.parametrize(("protocol", "task"), [
    (Task, TaskBase(1, [])),
    (Timer, TimerTask(2, CreateTimerAction(datetime(2026, 1, 1, tzinfo=UTC))))])
def test_the_sdk_tasks_fit_ours(protocol: type, task: object) -> None:
    assert fits(protocol, task) == []


def test_a_context_without_a_member_or_a_parameter_does_not_fit() -> None:
    class Narrow:
        @property
        def current_utc_datetime(self) -> None: ...

        def call_activity(self, name: str) -> None: ...

        def version(self) -> str: ...

    problems = fits(OrchestrationContext, Narrow)
    assert "create_timer is missing" in problems
    assert "version is a method, not a property" in problems
    assert any(p.startswith("call_activity(name, input_)") for p in problems)
