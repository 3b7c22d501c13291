"""`marks_failures`, the decorator every activity wears under its trigger.

The orchestrator sees an activity's failure only as text; the marker this puts in front of
the message (shared/failure_kinds.py) carries what the error's class says, permanent or
worth a retry, so a renamed class keeps its retry behaviour. The exception itself, its type
included, stays what it was. While telemetry is on, what the activity logs carries the release
its request names (shared/telemetry/logs.py).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from shared.failure_kinds import mark
from shared.telemetry.logs import release_scope, scope_of
from shared.telemetry.setup import enabled

F = TypeVar("F", bound=Callable[..., Any])


def marks_failures(function: F) -> F:
    """`function`, whose exceptions leave with their kind marked in their message.

    The wrapper carries `marks_failures` in its `__dict__`: no callable type declares it."""
    if inspect.iscoroutinefunction(function):
        @functools.wraps(function)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            try:
                with release_scope(_scope(args, kwargs)):
                    return await function(*args, **kwargs)
            except Exception as error:
                mark(error)
                raise
        run_async.__dict__["marks_failures"] = True
        return cast(F, run_async)

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            with release_scope(_scope(args, kwargs)):
                return function(*args, **kwargs)
        except Exception as error:
            mark(error)
            raise
    run.__dict__["marks_failures"] = True
    return cast(F, run)


def _scope(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, str] | None:
    """The release the activity's request names, for its log records (telemetry off: none)."""
    if not enabled():
        return None
    for value in (*args, *kwargs.values()):
        scope = scope_of(value)
        if scope is not None:
            return scope
    return None
