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

An operation starts only when it can: 404/400/409 with a one-line reason and nothing
started otherwise, 202 with the operation's links when started. The operations desk
(shared/releases/desk.py) decides and starts, the release view (shared/releases/view.py)
shows; this module parses, names the operator and answers (helpers in triggers/http.py).
The operator is `X-MS-CLIENT-PRINCIPAL-NAME` while App Service Authentication is on (which
sets it), else `anonymous`: without it the header is anyone's to send, and it is ignored.
Links point at this API, never at the Durable management API (its URLs carry the host's
system key in Azure); answers that carry links (a release's approval links above all) are
`Cache-Control: no-store`. Nothing secret is shown: the policy snapshot, which names secrets,
stays in the orchestration input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from blueprints import blueprint
from shared.app_context import app_ledger, app_policy
from shared.ledger import RELEASE_STATES
from shared.ledger.changes import ChangesBook
from shared.ledger.evidence import EvidenceBook
from shared.releases.desk import OperationsDesk
from shared.releases.operations import Operation
from shared.releases.view import ReleaseViews, summary, unknown
from shared.text import one_line
from triggers.durable_adapter import ClientInstances
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

bp = blueprint()

LIST_PARAMETERS = ("service", "state", "limit")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


# The routes ------------------------------------------------------------------------------

@bp.route(route="releases", methods=["GET"])
async def list_releases(req: func.HttpRequest) -> func.HttpResponse:
    """The ledger's releases, newest first, filtered by service and state."""
    async def answer() -> func.HttpResponse:
        service, states, limit = list_filters(req.params)
        rows = await asyncio.to_thread(app_ledger().releases, service, state=states or None,
                                       limit=limit)
        base = origin(req)
        return json_response([summary(row, lambda rid: status_uri(base, rid)) for row in rows],
                             200, NO_STORE)

    return await answering(answer)


@bp.route(route="releases/{releaseId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def show_release(req: func.HttpRequest,
                       client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One release (or operation): ledger row, stages, timeline and live Durable status."""
    async def answer() -> func.HttpResponse:
        return json_response(await show(client, req), 200, NO_STORE)

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


async def show(client: df.DurableOrchestrationClient, req: func.HttpRequest) -> dict[str, Any]:
    """The release or operation the route names, as `GET /api/releases/{releaseId}` shows it."""
    release_id = req.route_params.get("releaseId", "")
    if not INSTANCE_ID.fullmatch(release_id):
        raise unknown(release_id)
    base = origin(req)
    ledger = app_ledger()
    return await ReleaseViews(ledger, ClientInstances(client),
                              EvidenceBook.beside(ledger).rounds,
                              ChangesBook.beside(ledger).changes).show(
        release_id, lambda rid: status_uri(base, rid))


def operations_desk(client: df.DurableOrchestrationClient) -> OperationsDesk:
    """The desk that admits operations, over the app's ledger, Durable and policy."""
    return OperationsDesk(app_ledger(), ClientInstances(client), app_policy)


def release_named(req: func.HttpRequest) -> str:
    """The route's release id, when it has the shape of one; Refused(404) otherwise."""
    release_id: str = req.route_params.get("releaseId", "")
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
    extra = sorted(set(params) - set(LIST_PARAMETERS))
    if extra:
        raise Refused(400, f"unknown query parameter {extra[0]!r}; "
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
