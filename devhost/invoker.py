"""Calling user functions the way the Python worker does.

Sync functions run in a thread pool, async ones on the event loop. Each
parameter is filled from the function's bindings: the trigger value, the
durable client JSON, a `func.Out` per output binding, a `func.Context` for a
`context` parameter. Input bindings devhost does not emulate (blob, table, ...)
receive None. Every invocation is logged through `logged_invocation`.
Orchestrators are not called here: the Durable engine calls their handles.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.app_loader import (
    ACTIVITY_TRIGGER,
    DURABLE_CLIENT,
    ORCHESTRATION_TRIGGER,
    FunctionIndex,
    FunctionInfo,
)
from devhost.invocation_log import logged_invocation

T = TypeVar("T")


class FunctionNotFound(LookupError):
    """No function of the requested kind has that name."""


class InvocationError(RuntimeError):
    """The host could not prepare an invocation (not an error of the user code)."""


class _Out(func.Out[T], Generic[T]):
    """An output binding value the function sets."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value


class _TraceContext(func._abc.TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func._abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """The `context` parameter: invocation id, function name and directory."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._storage = threading.local()
        self._storage.invocation_id = self._invocation_id
        self._trace = _TraceContext()
        self._retry = _RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._storage

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> func._abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> func._abc.RetryContext:
        return self._retry


@dataclass
class InvocationResult:
    """What a function produced: its return value and its output bindings by name."""

    value: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)


def _default_thread_count() -> int:
    configured = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return min(32, (os.cpu_count() or 1) + 4)


class Invoker:
    """Invokes the functions of one app; owns the thread pools."""

    def __init__(self, index: FunctionIndex, *, app_dir: Path, max_activities: int = 10,
                 thread_count: int | None = None,
                 durable_client: Callable[[], str] | None = None) -> None:
        self.index = index
        self.app_dir = app_dir
        self.durable_client = durable_client
        self.activities = _by_name_and_alias(index, ACTIVITY_TRIGGER, lambda f: f.user_function)
        self.orchestrators: dict[str, Callable[..., Any]] = {
            name: f.user_function for name, f in _by_name_and_alias(
                index, ORCHESTRATION_TRIGGER,
                lambda f: getattr(f.user_function, "orchestrator_function", None)).items()}
        self._pool = ThreadPoolExecutor(thread_count or _default_thread_count(),
                                        thread_name_prefix="devhost-fn")
        self._activity_pool = ThreadPoolExecutor(max_activities,
                                                 thread_name_prefix="devhost-activity")
        self._activity_slots = asyncio.Semaphore(max_activities)

    async def invoke(self, function: FunctionInfo, trigger_value: Any,
                     *, pool: ThreadPoolExecutor | None = None) -> InvocationResult:
        """Call `function` with `trigger_value` for its trigger parameter; log the invocation."""
        with logged_invocation(function.name, function.trigger_type):
            kwargs, outputs = self._arguments(function, trigger_value)
            value = await self._call(function.user_function, kwargs, pool or self._pool)
        return InvocationResult(value, {name: out.get() for name, out in outputs.items()})

    async def run_activity(self, name: str, input_json: str | None) -> str:
        """Run activity `name` with its JSON input; return its JSON result."""
        function = self.activities.get(name)
        if function is None:
            known = ", ".join(sorted(self.activities)) or "none"
            raise FunctionNotFound(f"activity '{name}' is not defined in function_app.py "
                                   f"(activities: {known})")
        datum = meta.Datum("null" if input_json is None else input_json, "json")
        value = ActivityTriggerConverter.decode(datum, trigger_metadata=None)
        async with self._activity_slots:
            result = await self.invoke(function, value, pool=self._activity_pool)
        return str(ActivityTriggerConverter.encode(result.value, expected_type=None).value)

    def close(self) -> None:
        """Stop accepting work; running threads finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._activity_pool.shutdown(wait=False, cancel_futures=True)

    def _arguments(self, function: FunctionInfo,
                   trigger_value: Any) -> tuple[dict[str, Any], dict[str, _Out[Any]]]:
        bindings = {b.get("name"): b for b in function.bindings}
        kwargs: dict[str, Any] = {}
        outputs: dict[str, _Out[Any]] = {}
        for name in function.parameters:
            binding = bindings.get(name)
            if binding is None:
                if name == "context":
                    kwargs[name] = InvocationContext(function.name, str(self.app_dir))
                continue
            if binding == function.trigger:
                kwargs[name] = trigger_value
            elif binding.get("type") == DURABLE_CLIENT:
                if self.durable_client is None:
                    raise InvocationError(f"function {function.name}: no Durable engine is "
                                          "running to provide the durable client binding")
                kwargs[name] = self.durable_client()
            elif str(binding.get("direction", "")).upper() == "OUT":
                kwargs[name] = outputs[name] = _Out()
            else:
                kwargs[name] = None
        return kwargs, outputs

    async def _call(self, fn: Callable[..., Any], kwargs: dict[str, Any],
                    pool: ThreadPoolExecutor) -> Any:
        if inspect.iscoroutinefunction(fn):
            return await fn(**kwargs)
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(pool, functools.partial(context.run, fn, **kwargs))
        if inspect.isawaitable(result):
            result = await result
        return result


def _by_name_and_alias(index: FunctionIndex, trigger_type: str,
                       alias_of: Callable[[FunctionInfo], Any]) -> dict[str, Any]:
    """Functions of one trigger by declared name, plus their Python `__name__` if free."""
    functions = index.of_trigger(trigger_type)
    table: dict[str, Any] = {f.name: f for f in functions}
    for function in functions:
        alias = getattr(alias_of(function), "__name__", None)
        if alias and alias not in index:
            table.setdefault(alias, function)
    return table
