"""`/api/releases`: releases from the ledger with their live status; rollbacks and redeploys.

- `GET /api/releases?service=&state=&limit=`: the ledger's releases (and operations),
  newest first; 400 for an unknown parameter, state or a bad limit.
- `GET /api/releases/{releaseId}`: one row with its stages, a timeline (registry events,
  orchestration steps, stage outcomes) and the live Durable status; 404 when unknown.
- `POST /api/releases/{releaseId}/rollback` `{"environment", "reason"}`: roll the
  environment back from this release (what runs there now) to the previous good one.
- `POST /api/releases/{releaseId}/redeploy` `{"environment", "reason"?}`: deploy this past
  release's image (by digest, from the environment's repository) there again.
- `POST /api/releases/{releaseId}/retry` `{"reason"?}` (or no body): run a `Failed` release
  again from its first environment, same id, under today's policy (shared/releases/retry.py
  says when it may); its timeline records who, when and why.

An operation starts only when it can (shared/releases/desk.py admits it): 404/400/409 with
a one-line reason and nothing started otherwise, 202 with the operation's links when
started. This module parses, names the operator and answers (triggers/http.py). The operator is
`X-MS-CLIENT-PRINCIPAL-NAME` while App Service Authentication is on (which sets it), else
`anonymous`: without it the header is anyone's to send, and it is ignored.
Links point at this API, never at the Durable management API (its URLs carry the host's
system key in Azure); answers that carry links (a release's approval links above all) are
`Cache-Control: no-store`. Nothing secret is shown: the policy snapshot, which names secrets,
stays in the orchestration input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.app_context import app_ledger, app_policy
from shared.ledger import RELEASE_STATES, ReleaseRecord
from shared.releases.desk import OperationsDesk
from shared.releases.operations import ORCHESTRATORS, Operation, one_line, operation_kind
from shared.timefmt import as_utc
from triggers.durable_adapter import ACTIVE, ClientInstances, decoded, durable_status
from triggers.http import (
    NO_STORE,
    Refused,
    answering,
    operator,
    origin,
    request_body,
    status_uri,
)
from triggers.identifiers import INSTANCE_ID, NAME
from triggers.responses import json_response

bp = df.Blueprint()

LIST_PARAMETERS = ("service", "state", "limit")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SERVICE_EVENTS = 1_000      # events of one service read for a release's timeline
SHOWN_ORCHESTRATIONS = frozenset({"release", *ORCHESTRATORS.values()})
RETRIED = "retried"  # the history step of a retry (orchestrations/release.py Journal)


# The routes ------------------------------------------------------------------------------

@bp.route(route="releases", methods=["GET"])
async def list_releases(req: func.HttpRequest) -> func.HttpResponse:
    """The ledger's releases, newest first, filtered by service and state."""
    async def answer() -> func.HttpResponse:
        service, states, limit = list_filters(req.params)
        rows = await asyncio.to_thread(app_ledger().releases, service, state=states or None,
                                       limit=limit)
        return json_response([summary(row, origin(req)) for row in rows], 200, NO_STORE)

    return await answering(answer)


@bp.route(route="releases/{releaseId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def show_release(req: func.HttpRequest,
                       client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One release (or operation): ledger row, stages, timeline and live Durable status."""
    async def answer() -> func.HttpResponse:
        view = ReleaseView(client)
        return json_response(await view.show(req.route_params.get("releaseId", ""),
                                             origin(req)), 200, NO_STORE)

    return await answering(answer)


@bp.route(route="releases/{releaseId}/rollback", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_rollback(req: func.HttpRequest,
                         client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Roll an environment back from this release to the previous good one."""
    async def answer() -> func.HttpResponse:
        body = request_body(req.get_body(), required=("environment", "reason"))
        desk = operations_desk(client)
        op = await desk.rollback(release_named(req), body["environment"], body["reason"],
                                 operator(req.headers))
        await desk.start(op)
        return started(op, origin(req))

    return await answering(answer)


@bp.route(route="releases/{releaseId}/redeploy", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_redeploy(req: func.HttpRequest,
                         client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Deploy this past release's image into an environment it reached before, again."""
    async def answer() -> func.HttpResponse:
        body = request_body(req.get_body(), required=("environment",), optional=("reason",))
        desk = operations_desk(client)
        op = await desk.redeploy(release_named(req), body["environment"],
                                 body.get("reason", ""), operator(req.headers))
        await desk.start(op)
        return started(op, origin(req))

    return await answering(answer)


@bp.route(route="releases/{releaseId}/retry", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def retry_release(req: func.HttpRequest,
                        client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Run a release that failed (for reasons outside its image) again, under the same id."""
    async def answer() -> func.HttpResponse:
        raw = req.get_body() or b""
        body = request_body(raw, required=(), optional=("reason",)) if raw.strip() else {}
        desk = operations_desk(client)
        retry = await desk.retry(release_named(req), body.get("reason", ""),
                                 operator(req.headers))
        uri = status_uri(origin(req), retry.release_id)
        return json_response({"releaseId": retry.release_id, "retry": retry.number,
                              "by": retry.by, "reason": retry.reason or None,
                              "after": retry.after,
                              "policy": {"source": retry.policy_source,
                                         "sha256": retry.policy_sha256},
                              "statusUri": uri},
                             202, {"Location": uri, "Retry-After": "5", **NO_STORE})

    return await answering(answer)


def operations_desk(client: df.DurableOrchestrationClient) -> OperationsDesk:
    """The desk that admits operations, over the app's ledger, Durable and policy."""
    return OperationsDesk(app_ledger(), ClientInstances(client), app_policy)


def release_named(req: func.HttpRequest) -> str:
    """The route's release id, when it has the shape of one; Refused(404) otherwise."""
    release_id = req.route_params.get("releaseId", "")
    if not INSTANCE_ID.fullmatch(release_id):
        raise Refused(404, f"no release {one_line(release_id, 300)!r}")
    return release_id


def started(op: Operation, base: str) -> func.HttpResponse:
    """202 with the operation as it started and its status link."""
    uri = status_uri(base, op.operation_id)
    body = {"id": op.operation_id, "kind": op.kind, "service": op.service,
            "environment": op.environment, "by": op.by, "reason": op.reason,
            "release": op.release.to_dict(),
            "replaces": op.replaces.to_dict() if op.replaces else None,
            "policy": op.policy, "statusUri": uri}
    return json_response(body, 202, {"Location": uri, "Retry-After": "5", **NO_STORE})


# Requests --------------------------------------------------------------------------------

def list_filters(params: Mapping[str, str]) -> tuple[str | None, list[str], int]:
    """(service, states, limit) of `GET /api/releases`; Refused(400) names what is wrong."""
    unknown = sorted(set(params) - set(LIST_PARAMETERS))
    if unknown:
        raise Refused(400, f"unknown query parameter {unknown[0]!r}; "
                           f"expected {', '.join(LIST_PARAMETERS)}")
    service = (params.get("service") or "").strip() or None
    if service is not None and (len(service) > 63 or not NAME.fullmatch(service)):
        raise Refused(400, f"service {one_line(service, 80)!r} is not a service name")
    by_lower = {state.lower(): state for state in RELEASE_STATES}
    states = []
    for word in (params.get("state") or "").split(","):
        if not word.strip():
            continue
        if word.strip().lower() not in by_lower:
            raise Refused(400, f"unknown state {one_line(word, 40)!r}; expected one or more "
                               f"(comma-separated) of {', '.join(RELEASE_STATES)}")
        states.append(by_lower[word.strip().lower()])
    text = (params.get("limit") or "").strip()
    if text and not (text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        raise Refused(400, f"limit must be a whole number from 1 to {MAX_LIMIT}, "
                           f"not {one_line(text, 20)!r}")
    return service, states, int(text) if text else DEFAULT_LIMIT


# Showing ---------------------------------------------------------------------------------

def summary(row: ReleaseRecord, base: str) -> dict[str, Any]:
    """A list entry: the row without its stages, its kind and its link."""
    shown = row.to_dict()
    shown.pop("stages")
    return {**shown, "kind": operation_kind(row.release_id),
            "statusUri": status_uri(base, row.release_id)}


class ReleaseView:
    """`GET /api/releases/{releaseId}`: the ledger's row joined with Durable's status."""

    def __init__(self, client: df.DurableOrchestrationClient) -> None:
        self.client = client

    async def show(self, release_id: str, base: str) -> dict[str, Any]:
        unknown = Refused(404, f"no release or operation {one_line(release_id, 300)!r}")
        if not INSTANCE_ID.fullmatch(release_id):
            raise unknown
        ledger = app_ledger()
        row = await asyncio.to_thread(ledger.get_release, release_id)
        status = await durable_status(self.client, release_id)
        if status is not None and status.name not in SHOWN_ORCHESTRATIONS:
            status = None
        if row is None and status is None:
            raise unknown
        events = []
        if row is not None:
            events = [e for e in await asyncio.to_thread(ledger.events, row.service,
                                                         limit=SERVICE_EVENTS)
                      if e.release_id == release_id]
        custom = decoded(status.custom_status) if status is not None else None
        shown = row.to_dict() if row is not None else pending_row(release_id, status, custom)
        return {**shown, "kind": operation_kind(release_id),
                "statusUri": status_uri(base, release_id),
                "timeline": timeline(row, custom, events),
                "durable": durable_view(status, custom)}


def pending_row(release_id: str, status: Any, custom: Any) -> dict[str, Any]:
    """An instance whose first ledger write has not landed yet, from its custom status."""
    custom = custom if isinstance(custom, dict) else {}
    return {"releaseId": release_id, "service": custom.get("service"),
            "version": custom.get("version"), "digest": custom.get("digest"),
            "state": "Running" if status.runtime_status in ACTIVE else None,
            "createdAt": _iso(status.created_time), "updatedAt": _iso(status.last_updated_time),
            "environment": custom.get("environment"), "step": custom.get("step"),
            "reason": custom.get("reason"), "stages": {}}


def timeline(row: ReleaseRecord | None, custom: Any, events: list[Any]) -> list[dict[str, Any]]:
    """What happened, oldest first: registry events, orchestration steps, stage outcomes."""
    entries: list[tuple[datetime, dict[str, Any]]] = []

    def add(at: Any, source: str, environment: str | None, what: str) -> None:
        moment = as_utc(at)
        if moment is not None:
            entries.append((moment, {"at": moment.isoformat(), "source": source,
                                     "environment": environment, "what": what}))

    for event in events:
        what = f"{event.action} {event.repository}:{event.tag} via {event.source}: " \
               f"{event.outcome}" + (f" ({event.reason})" if event.reason else "")
        if event.deliveries > 1:  # the same event id again: counted on its row, outcome kept
            what += f" (delivered {event.deliveries} times)"
        add(event.received_at, "registry", None, what)
    history = custom.get("history") if isinstance(custom, dict) else None
    for step in history if isinstance(history, list) else []:
        if isinstance(step, dict):
            what = str(step.get("step"))
            if what == RETRIED and step.get("detail"):  # who, when and why
                what = str(step["detail"])
            add(step.get("at"), "orchestration", step.get("environment"), what)
    for environment, stage in (row.stages if row is not None else {}).items():
        add(stage.started, "ledger", environment, "stage started")
        if stage.finished is not None:
            add(stage.finished, "ledger", environment,
                f"stage {stage.state}" + (f": {stage.detail}" if stage.detail else ""))
    entries.sort(key=lambda entry: entry[0])
    return [entry for _, entry in entries]


def durable_view(status: Any, custom: Any) -> dict[str, Any] | None:
    if status is None:
        return None
    return {"name": status.name,
            "runtimeStatus": status.runtime_status.value if status.runtime_status else None,
            "customStatus": custom, "output": decoded(status.output),
            "createdTime": _iso(status.created_time),
            "lastUpdatedTime": _iso(status.last_updated_time)}


def _iso(value: Any) -> str | None:
    moment = as_utc(value)
    return moment.isoformat() if moment is not None else None
