"""The blueprint every trigger, orchestration and activity module registers its functions on.

azure-functions-durable ships no types, so to a type checker `df.Blueprint()` is Any and its
decorators would leave every function they register untyped. `Blueprint` names the decorators
this app uses, with what they take and what they hand back: the SDK's `FunctionBuilder`, which
the app registers (an orchestrator or a Durable-client function is no longer callable as
written). Registers nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import azure.durable_functions as df
import azure.functions as func
from azure.functions.decorators.function_app import FunctionBuilder

Decorator = Callable[[Callable[..., Any]], FunctionBuilder]


class Blueprint(Protocol):
    """The decorators of `df.Blueprint` that this app uses."""

    def route(self, route: str | None = None, trigger_arg_name: str = "req",
              binding_arg_name: str = "$return", methods: Iterable[str] | None = None,
              auth_level: func.AuthLevel | str | None = None) -> Decorator: ...

    def timer_trigger(self, arg_name: str, schedule: str,
                      run_on_startup: bool | None = None) -> Decorator: ...

    def event_grid_trigger(self, arg_name: str) -> Decorator: ...

    def durable_client_input(self, client_name: str, task_hub: str | None = None,
                             connection_name: str | None = None) -> Decorator: ...

    def orchestration_trigger(self, context_name: str,
                              orchestration: str | None = None) -> Decorator: ...

    def activity_trigger(self, input_name: str, activity: str | None = None) -> Decorator: ...


def blueprint() -> Blueprint:
    """A new Durable Functions blueprint, for `function_app.py` to register."""
    made: Blueprint = df.Blueprint()
    return made
