"""Import a v2-model `function_app.py` and index its functions.

The app object is the module-level `azure.functions.FunctionRegister`
(FunctionApp, DFApp, ...). `get_functions()` is called exactly once: the SDK
refuses a second call. Does not support the v1 model (function.json folders).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.functions.decorators.utils import StringifyEnumJsonEncoder

MODULE_NAME = "function_app"

# Trigger and binding types devhost serves or feeds.
HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
EVENT_GRID_TRIGGER = "eventGridTrigger"
ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
DURABLE_CLIENT = "durableClient"
HTTP_OUTPUT = "http"
SUPPORTED_TRIGGERS = {HTTP_TRIGGER, TIMER_TRIGGER, EVENT_GRID_TRIGGER,
                      ORCHESTRATION_TRIGGER, ACTIVITY_TRIGGER}
DURABLE_TYPES = {ORCHESTRATION_TRIGGER, ACTIVITY_TRIGGER, ENTITY_TRIGGER, DURABLE_CLIENT}


class AppLoadError(Exception):
    """The app directory does not hold a loadable v2-model Function App."""


class AppImportError(AppLoadError):
    """function_app.py raised while being imported; the cause carries the traceback."""


@dataclass(frozen=True)
class FunctionInfo:
    """One indexed function: its name, trigger, bindings and Python callable."""

    name: str
    trigger_type: str
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    user_function: Callable[..., Any]
    parameters: tuple[str, ...] = field(default=())

    @property
    def trigger_param(self) -> str:
        return str(self.trigger.get("name", ""))

    def bindings_of(self, binding_type: str) -> list[dict[str, Any]]:
        """Non-trigger bindings of one type (e.g. "durableClient", "http")."""
        return [b for b in self.bindings
                if b.get("type") == binding_type and b != self.trigger]

    @property
    def is_durable(self) -> bool:
        return any(b.get("type") in DURABLE_TYPES for b in self.bindings)


class FunctionIndex:
    """The functions of one app, by name, in declaration order."""

    def __init__(self, functions: list[FunctionInfo]) -> None:
        self._by_name = {f.name: f for f in functions}

    def __iter__(self) -> Iterator[FunctionInfo]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> FunctionInfo | None:
        return self._by_name.get(name)

    def of_trigger(self, trigger_type: str) -> list[FunctionInfo]:
        return [f for f in self if f.trigger_type == trigger_type]

    @property
    def has_durable(self) -> bool:
        return any(f.is_durable for f in self)


def import_app_module(app_dir: Path) -> ModuleType:
    """Import `app_dir/function_app.py` afresh as module `function_app`, `app_dir` first on
    sys.path so its modules win over same-named ones elsewhere."""
    path = app_dir / "function_app.py"
    if not path.is_file():
        raise AppLoadError(f"{path} not found: --app-dir must be a Python v2 Function App")
    directory = str(app_dir)
    if sys.path[:1] != [directory]:  # the import root, ahead of the caller's folder
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(MODULE_NAME)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        if previous is not None:
            sys.modules[MODULE_NAME] = previous
        else:
            sys.modules.pop(MODULE_NAME, None)
        if isinstance(error, KeyboardInterrupt):
            raise
        raise AppImportError(f"{path}: import failed: {type(error).__name__}: {error}") from error
    return module


def find_app(module: ModuleType) -> func.FunctionRegister:
    """The single module-level FunctionRegister instance."""
    apps: dict[int, tuple[str, func.FunctionRegister]] = {}
    for key, value in vars(module).items():
        if isinstance(value, func.FunctionRegister):
            apps.setdefault(id(value), (key, value))
    if not apps:
        raise AppLoadError(f"{module.__file__}: no FunctionApp (FunctionRegister) instance "
                           "at module level")
    if len(apps) > 1:
        names = ", ".join(sorted(k for k, _ in apps.values()))
        raise AppLoadError(f"{module.__file__}: several FunctionApp instances ({names}); "
                           "define exactly one")
    return next(iter(apps.values()))[1]


def _parameters(name: str, user_function: Callable[..., Any],
                bindings: tuple[dict[str, Any], ...]) -> tuple[str, ...]:
    """Parameter names of the callable, checked against the bindings like the worker does."""
    bound = {b.get("name") for b in bindings}
    params = inspect.signature(user_function).parameters.values()
    names = tuple(p.name for p in params
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    unbound = [p.name for p in params
               if p.name not in bound and p.name != "context"
               and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if unbound:
        raise AppLoadError(f"function {name}: parameters {', '.join(unbound)} are declared "
                           "in Python but have no binding")
    return names


def index_functions(app: func.FunctionRegister) -> FunctionIndex:
    """Call `app.get_functions()` once and describe each function."""
    try:
        functions = app.get_functions()
    except ValueError as error:
        raise AppLoadError(f"function indexing failed: {error}") from error
    infos: list[FunctionInfo] = []
    for function in functions:
        name = function.get_function_name() or function.get_user_function().__name__
        trigger = function.get_trigger()
        trigger_dict = json.loads(json.dumps(trigger.get_dict_repr(),
                                             cls=StringifyEnumJsonEncoder)) if trigger else {}
        bindings = tuple(json.loads(raw) for raw in function.get_raw_bindings())
        user_function = function.get_user_function()
        infos.append(FunctionInfo(
            name=name, trigger_type=str(trigger_dict.get("type", "")), trigger=trigger_dict,
            bindings=bindings, user_function=user_function,
            parameters=_parameters(name, user_function, bindings)))
    return FunctionIndex(infos)


def load_app(app_dir: Path) -> FunctionIndex:
    """Import the app in `app_dir` and index it."""
    return index_functions(find_app(import_app_module(app_dir)))
