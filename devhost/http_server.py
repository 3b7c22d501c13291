"""The aiohttp application: HTTP-triggered functions under `/{routePrefix}/`.

`create_web_app` mounts the Event Grid webhook, host status, any extra routes
(the Durable management API) and, last, the catch-all that dispatches HTTP
triggers through the route table. Auth levels and function keys are not
enforced, as with `func start`. An exception in a function is a 500 whose body
carries no traceback: the traceback goes to the invocation log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from azure.functions import _abc as azf_abc
from azure.functions.http import HttpRequest

from devhost.app_loader import HTTP_OUTPUT, HTTP_TRIGGER, AppLoadError, FunctionIndex, FunctionInfo
from devhost.http_routes import RouteError, RouteTable
from devhost.invoker import Invoker

log = logging.getLogger("devhost.http")

MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's request size limit
_HOP_HEADERS = {"content-length", "transfer-encoding", "connection"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, error: str, reason: str) -> web.Response:
    """A small JSON error body: `{"error": ..., "reason": ...}`."""
    return web.json_response({"error": error, "reason": reason}, status=status)


class HttpTriggers:
    """Routes requests under the route prefix to HTTP-triggered functions."""

    def __init__(self, index: FunctionIndex, invoker: Invoker, route_prefix: str) -> None:
        self.invoker = invoker
        self.route_prefix = route_prefix.strip("/")
        self.table: RouteTable[FunctionInfo] = RouteTable()
        for function in index.of_trigger(HTTP_TRIGGER):
            try:
                self.table.add(self.route_of(function), function.trigger.get("methods"),
                               function)
            except RouteError as error:
                raise AppLoadError(f"function {function.name}: {error}") from None

    @staticmethod
    def route_of(function: FunctionInfo) -> str:
        return str(function.trigger.get("route") or function.name).strip("/")

    def url_of(self, function: FunctionInfo, base_url: str) -> str:
        """The function's URL as the host prints it at start-up."""
        path = "/".join(p for p in (self.route_prefix, self.route_of(function)) if p)
        return f"{base_url}/{path}"

    def _relative(self, raw_path: str) -> str | None:
        """The path below the route prefix, or None when outside it."""
        if not self.route_prefix:
            return raw_path
        prefix = "/" + self.route_prefix
        head, rest = raw_path[:len(prefix)], raw_path[len(prefix):]
        if head.lower() != prefix.lower() or (rest and not rest.startswith("/")):
            return None
        return rest

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Dispatch one request to the matching function."""
        raw_path = request.rel_url.raw_path
        relative = self._relative(raw_path)
        if relative is None:
            if raw_path == "/" and request.method in ("GET", "HEAD"):
                return web.Response(text="devhost: the Functions host is running.\n")
            return json_error(404, "Not Found", f"{raw_path} is outside the route prefix "
                                                f"'/{self.route_prefix}'")
        match, path_known = self.table.resolve(relative, request.method)
        if match is None:
            reason = (f"no function accepts {request.method} at {raw_path}" if path_known
                      else f"no function route matches {raw_path}")
            return json_error(404, "Not Found", reason)
        function = match.route.target
        http_request = HttpRequest(
            request.method, str(request.url),
            headers=_joined(request.headers), params=_joined(request.query),
            route_params=match.values, body_type="bytes", body=await request.read())
        try:
            result = await self.invoker.invoke(function, http_request)
        except Exception:  # logged with its traceback by logged_invocation
            return _failed(function)
        try:
            return to_web_response(function, _http_output(function, result.value, result.outputs))
        except TypeError as error:
            log.error("%s", error)
            return _failed(function)


def _failed(function: FunctionInfo) -> web.Response:
    """The 500 for a failed invocation: no traceback or exception text in the body."""
    return web.Response(status=500, text=f"Internal Server Error: function {function.name} "
                                         "failed; see the devhost log.\n")


def _joined(multi: Any) -> dict[str, str]:
    """A multi-dict as the host passes it: repeated keys joined with commas."""
    return {key: ",".join(multi.getall(key)) for key in multi.keys()}


def _http_output(function: FunctionInfo, value: Any, outputs: dict[str, Any]) -> Any:
    for binding in function.bindings_of(HTTP_OUTPUT):
        name = binding.get("name")
        if name != "$return" and str(binding.get("direction", "")).upper() == "OUT":
            return outputs.get(str(name))
    return value


def to_web_response(function: FunctionInfo, value: Any) -> web.Response:
    """Turn a function's HTTP output into a response, as the worker and host do."""
    if value is None:
        return web.Response(status=204)
    if isinstance(value, str):
        return web.Response(body=value.encode(), content_type="text/plain", charset="utf-8")
    if isinstance(value, bytes | bytearray):
        return web.Response(body=bytes(value), content_type="application/octet-stream")
    if isinstance(value, azf_abc.HttpResponse):
        headers = [(k, v) for k, v in value.headers.items() if k.lower() not in _HOP_HEADERS]
        if not any(k.lower() == "content-type" for k, _ in headers):
            mimetype = value.mimetype
            headers.append(("Content-Type", f"{mimetype}; charset={value.charset}"
                            if mimetype.startswith("text/") else mimetype))
        response = web.Response(status=value.status_code, body=value.get_body() or b"")
        for key, header in headers:
            response.headers.add(key, header)
        return response
    raise TypeError(f"function {function.name} returned {type(value).__name__}; an HTTP "
                    "function must return func.HttpResponse, str or bytes")


async def host_status(_: web.Request) -> web.Response:
    """`GET /admin/host/status`, like the Functions host."""
    return web.json_response({"state": "Running", "host": "devhost"})


def create_web_app(http: HttpTriggers, eventgrid: Handler,
                   extend: Iterable[Callable[[web.Application], None]] = ()) -> web.Application:
    """The aiohttp app; `extend` callbacks add routes (e.g. the Durable management API)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/admin/host/status", host_status)
    app.router.add_route("*", "/runtime/webhooks/eventgrid", eventgrid)
    for add_routes in extend:
        add_routes(app)
    app.router.add_route("*", "/{tail:.*}", http.handle)
    return app
