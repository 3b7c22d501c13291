"""The Durable HTTP management API (`/runtime/webhooks/durabletask/...`) over the engine.

Serves the calls the SDK's `DurableOrchestrationClient` makes (and the URLs of
`create_check_status_response`), with the real host's status codes, and builds
the durable client binding JSON that points the SDK here. Bad requests get a
4xx with a one-line reason and change nothing.
"""

from __future__ import annotations

import json
from datetime import datetime

from aiohttp import web

from .engine import DurableError, Engine, InstanceNotFound

PREFIX = "/runtime/webhooks/durabletask"
_RUNTIME_STATUSES = {"Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Canceled",
                     "Terminated", "Suspended"}
_IN_PROGRESS = {"Pending", "Running", "ContinuedAsNew", "Suspended"}
_ENGINE_KEY: web.AppKey[Engine] = web.AppKey("durable_engine", Engine)


def add_management_routes(app: web.Application, engine: Engine) -> None:
    """Mount the management API on `app`, served by `engine`."""
    app[_ENGINE_KEY] = engine
    app.router.add_routes([
        web.post(PREFIX + "/orchestrators/{name}", _start),
        web.post(PREFIX + "/orchestrators/{name}/{instance_id}", _start),
        web.get(PREFIX + "/instances", _query),
        web.get(PREFIX + "/instances/", _query),
        web.delete(PREFIX + "/instances/", _purge_by),
        web.get(PREFIX + "/instances/{instance_id}", _status),
        web.delete(PREFIX + "/instances/{instance_id}", _purge),
        web.post(PREFIX + "/instances/{instance_id}/raiseEvent/{event}", _raise_event),
        web.post(PREFIX + "/instances/{instance_id}/{operation}", _operation),
    ])


def client_binding_json(engine: Engine, base_url: str, task_hub: str | None = None) -> str:
    """The `durableClient` binding value: URLs that lead the SDK's client to this host."""
    hub = task_hub or engine.hub_name
    root = base_url.rstrip("/") + PREFIX
    instance = f"{root}/instances/INSTANCEID"
    query = f"taskHub={hub}&connection=Storage"
    return json.dumps({
        "taskHubName": hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{root}/orchestrators/{{functionName}}[/{{instanceId}}]"
                                        f"?{query}",
        },
        "managementUrls": {
            "id": "INSTANCEID",
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
        },
        "baseUrl": root,
        "rpcBaseUrl": root + "/",
        "requiredQueryStringParameters": query,
    })


# --- handlers ----------------------------------------------------------------------------------

async def _start(request: web.Request) -> web.Response:
    engine = _engine(request)
    body = await request.text()
    try:
        instance_id = engine.start_new(request.match_info["name"],
                                       request.match_info.get("instance_id"),
                                       _orchestration_input(body),
                                       version=request.query.get("version"))
    except DurableError as refused:
        return _error(refused)
    payload = json.loads(client_binding_json(engine, _origin(request)))["managementUrls"]
    links = {key: value.replace("INSTANCEID", instance_id) for key, value in payload.items()}
    return web.json_response(links, status=202, headers={
        "Location": links["statusQueryGetUri"], "Retry-After": "1"})


async def _status(request: web.Request) -> web.Response:
    engine = _engine(request)
    status = engine.status(request.match_info["instance_id"],
                           show_input=_flag(request, "showInput", default=True),
                           show_history=_flag(request, "showHistory"),
                           show_history_output=_flag(request, "showHistoryOutput"))
    if status is None:
        return web.Response(status=404)  # the SDK reads an empty body as "not found"
    code = 202 if status["runtimeStatus"] in _IN_PROGRESS else 200
    return web.json_response(status, status=code)


async def _query(request: web.Request) -> web.Response:
    engine = _engine(request)
    try:
        found = engine.query(created_from=_date(request, "createdTimeFrom"),
                             created_to=_date(request, "createdTimeTo"),
                             statuses=_statuses(request),
                             prefix=request.query.get("instanceIdPrefix") or None,
                             show_input=_flag(request, "showInput"))
    except DurableError as refused:
        return _error(refused)
    return web.json_response(found)


async def _raise_event(request: web.Request) -> web.Response:
    engine = _engine(request)
    body = await request.text()
    try:
        engine.raise_event(request.match_info["instance_id"], request.match_info["event"],
                           body if body.strip() else None)
    except DurableError as refused:
        return _error(refused)
    return web.Response(status=202)


async def _operation(request: web.Request) -> web.Response:
    engine = _engine(request)
    operation = request.match_info["operation"]
    actions = {"terminate": engine.terminate, "suspend": engine.suspend, "resume": engine.resume}
    if operation not in actions:
        return _error(DurableError(f"unknown instance operation {operation!r}; devhost serves"
                                   " terminate, suspend and resume"), status=404)
    try:
        actions[operation](request.match_info["instance_id"], request.query.get("reason", ""))
    except DurableError as refused:
        return _error(refused)
    return web.Response(status=202)


async def _purge(request: web.Request) -> web.Response:
    deleted = _engine(request).purge([request.match_info["instance_id"]])
    if not deleted:
        return _error(InstanceNotFound("no finished instance with that id to purge"))
    return web.json_response({"instancesDeleted": deleted})


async def _purge_by(request: web.Request) -> web.Response:
    try:
        deleted = _engine(request).purge_by(created_from=_date(request, "createdTimeFrom"),
                                            created_to=_date(request, "createdTimeTo"),
                                            statuses=_statuses(request))
    except DurableError as refused:
        return _error(refused)
    if not deleted:
        return _error(InstanceNotFound("no finished instance matches"))
    return web.json_response({"instancesDeleted": deleted})


# --- request parsing ---------------------------------------------------------------------------

def _engine(request: web.Request) -> Engine:
    engine = request.app[_ENGINE_KEY]
    if not engine.running:
        raise web.HTTPServiceUnavailable(text="the durable engine is stopping\n")
    hub = request.query.get("taskHub")
    if hub and hub != engine.hub_name:
        raise web.HTTPNotFound(text=f"task hub {hub!r} is not served here "
                                    f"(this host serves {engine.hub_name!r})\n")
    return engine


def _orchestration_input(body: str) -> str | None:
    """The input JSON text: the SDK posts it JSON-encoded once more; raw callers post JSON."""
    if not body.strip():
        return None
    try:
        value = json.loads(body)
    except ValueError as bad:
        raise DurableError(f"request body is not valid JSON: {bad}") from bad
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except ValueError:
            return body
    return body


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() == "true"


def _date(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as bad:
        raise DurableError(f"{name} is not an ISO 8601 time: {value!r}") from bad
    if parsed.tzinfo is None:
        raise DurableError(f"{name} needs a time zone (e.g. a trailing Z): {value!r}")
    return parsed


def _statuses(request: web.Request) -> list[str]:
    raw = request.query.get("runtimeStatus", "")
    statuses = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = sorted(set(statuses) - _RUNTIME_STATUSES)
    if unknown:
        raise DurableError(f"unknown runtimeStatus {', '.join(unknown)}; expected some of "
                           f"{', '.join(sorted(_RUNTIME_STATUSES))}")
    return statuses


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _error(refused: DurableError, status: int | None = None) -> web.Response:
    return web.json_response({"error": str(refused)}, status=status or refused.status)

