"""The host's admin API for running a non-HTTP function at once: `POST /admin/functions/{name}`.

As in the Functions host (what Core Tools and the portal's Test/Run call): the body is JSON
`{"input": "..."}` (a string, number, boolean or null), the function name matches
case-insensitively, the answer is 202 with no body while the function runs in the
background, 404 for an unknown function. devhost runs timer functions this way (after a run
of the same timer in progress, never beside it; `IsPastDue` false); any other kind is a 400
saying how to run it. Like the local host, no master key is asked for; unlike it, only
callers on this machine (loopback) are answered, whatever address devhost listens on.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

from aiohttp import web

from devhost.app_loader import (
    ACTIVITY_TRIGGER,
    EVENT_GRID_TRIGGER,
    HTTP_TRIGGER,
    ORCHESTRATION_TRIGGER,
    TIMER_TRIGGER,
    FunctionIndex,
    FunctionInfo,
)
from devhost.http_server import json_error
from devhost.timers import TimerService

log = logging.getLogger("devhost.admin")

ROUTE = "/admin/functions/{name}"
MAX_BODY_BYTES = 64 * 1024
_HOW_TO_RUN = {
    HTTP_TRIGGER: "HTTP-triggered: call its route",
    EVENT_GRID_TRIGGER: "Event Grid-triggered: post the event to "
                        "/runtime/webhooks/eventgrid?functionName={name}",
    ORCHESTRATION_TRIGGER: "an orchestrator: start it through a durable client",
    ACTIVITY_TRIGGER: "an activity: it runs when an orchestration calls it",
}


class AdminBodyError(ValueError):
    """A body that is not `{"input": <string, number, boolean or null>}`."""


def parse_invocation(body: bytes) -> Any:
    """The `input` of an admin invocation body; AdminBodyError with a one-line reason."""
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise AdminBodyError('the body must be JSON such as {"input": ""}') from None
    if not isinstance(payload, dict):
        raise AdminBodyError('the body must be a JSON object such as {"input": ""}')
    value = payload.get("input")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise AdminBodyError("input must be a string, number, boolean or null")
    return value


def local_caller(remote: str | None) -> bool:
    """Whether a peer address is this machine (loopback)."""
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


class AdminApi:
    """Runs the app's timer functions on request."""

    def __init__(self, index: FunctionIndex, timers: TimerService) -> None:
        self._by_name = {function.name.lower(): function for function in index}
        self.timers = timers

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(ROUTE, self.invoke)

    async def invoke(self, request: web.Request) -> web.Response:
        """`POST /admin/functions/{name}`: 202 once the run is under way."""
        if not local_caller(request.remote):
            return json_error(403, "Forbidden", "devhost answers the admin API only to "
                                                "callers on this machine")
        function = self._by_name.get(request.match_info["name"].lower())
        if function is None:
            return json_error(404, "Not Found",
                              f"no function named {request.match_info['name'][:100]!r}")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return json_error(413, "Payload Too Large",
                              f"an admin invocation body is at most {MAX_BODY_BYTES} bytes")
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return json_error(413, "Payload Too Large",
                              f"an admin invocation body is at most {MAX_BODY_BYTES} bytes")
        try:
            parse_invocation(body)  # a timer's input is not used; the host ignores it too
        except AdminBodyError as error:
            return json_error(400, "Bad Request", str(error))
        if function.trigger_type != TIMER_TRIGGER:
            return json_error(400, "Bad Request", _not_runnable(function))
        self.timers.run_now(function.name)
        log.info("admin: running timer function %s now", function.name)
        return web.Response(status=202)


def _not_runnable(function: FunctionInfo) -> str:
    how = _HOW_TO_RUN.get(function.trigger_type, f"triggered by "
                          f"{function.trigger_type or 'nothing'}, which devhost does not serve")
    return (f"devhost runs only timer functions through the admin API; {function.name} is "
            f"{how.format(name=function.name)}")
