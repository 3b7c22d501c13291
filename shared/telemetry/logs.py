"""Which release a log record belongs to: a context variable set around an activity (or an
orchestrator's own log line), and the filter that copies it onto the records our telemetry
handler exports as attributes (`release.id`, `release.service`, `release.environment`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

RELEASE_ID = "release.id"
SERVICE = "release.service"
ENVIRONMENT = "release.environment"

_SCOPE: ContextVar[Mapping[str, str] | None] = ContextVar("telemetry_release", default=None)


def scope_of(request: Any) -> dict[str, str] | None:
    """The release attributes an activity's request names (its `releaseId`, `service`,
    `environment` or `stage.name`, at its top or in a field one level down: a claim's
    `record`); None when it names no release."""
    if not isinstance(request, Mapping):
        return None
    if not isinstance(request.get("releaseId"), str):
        return next((scope for value in request.values() if isinstance(value, Mapping)
                     and isinstance(value.get("releaseId"), str)
                     for scope in [scope_of(value)]), None)
    scope = {RELEASE_ID: request["releaseId"]}
    if isinstance(request.get("service"), str):
        scope[SERVICE] = request["service"]
    stage = request.get("stage")
    environment = request.get("environment") or (
        stage.get("name") if isinstance(stage, Mapping) else None)
    if isinstance(environment, str):
        scope[ENVIRONMENT] = environment
    return scope


@contextmanager
def release_scope(scope: Mapping[str, str] | None) -> Iterator[None]:
    """Records logged inside carry `scope`'s attributes (nothing changes for None)."""
    if scope is None:
        yield
        return
    token = _SCOPE.set(scope)
    try:
        yield
    finally:
        _SCOPE.reset(token)


class ReleaseAttributes(logging.Filter):
    """Adds the current release scope to each record (the OpenTelemetry handler exports a
    record's extra fields as attributes); lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = _SCOPE.get()
        if scope:
            for key, value in scope.items():
                record.__dict__.setdefault(key, value)
        return True
