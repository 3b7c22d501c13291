"""`POST /api/releases/{releaseId}/resolve`: roll back or keep a failed deployment that waits.

With `rollback.pauseForHuman`, a failed deployment waits for a person instead of being
restored at once. Body `{"environment", "decision": "rollback" | "keep", "reason"}`. The
decision is passed on only while the release waits for one in that environment: 404 for
an unknown release, 400 for a bad body, 409 (saying what the release does instead) when it
waits for nothing there; 202 with the release's status link when passed on. The first
decision the release takes wins; the operator is named as in the other operations.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from blueprints import blueprint
from shared.releases.operations import operation_kind
from shared.releases.pause import CHOICES
from shared.releases.status import ReleaseStatus
from shared.releases.waiting import FailureWait
from shared.text import one_line
from triggers.durable_adapter import ACTIVE, decoded, durable_status
from triggers.http import (
    NO_STORE,
    Refused,
    answering,
    operator,
    origin,
    request_body,
    status_uri,
)
from triggers.identifiers import INSTANCE_ID
from triggers.responses import json_response

bp = blueprint()


@bp.route(route="releases/{releaseId}/resolve", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def resolve_failure(req: func.HttpRequest,
                          client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Pass a person's choice to a failed deployment that waits for one."""
    async def answer() -> func.HttpResponse:
        body = request_body(req.get_body(), required=("environment", "decision", "reason"))
        if body["decision"] not in CHOICES:
            raise Refused(400, f"decision must be one of {', '.join(CHOICES)}, not "
                               f"{one_line(body['decision'], 40)!r}")
        release_id = req.route_params.get("releaseId", "")
        waiting = await waiting_for_choice(client, release_id, body["environment"])
        by = operator(req.headers)
        await client.raise_event(release_id, waiting.event, {
            "decision": body["decision"], "by": by, "reason": body["reason"]})
        uri = status_uri(origin(req), release_id)
        return json_response({"releaseId": release_id, "environment": body["environment"],
                              "decision": body["decision"], "by": by,
                              "reason": body["reason"], "statusUri": uri},
                             202, {"Location": uri, **NO_STORE})

    return await answering(answer)


async def waiting_for_choice(client: df.DurableOrchestrationClient, release_id: str,
                             environment: str) -> FailureWait:
    """The release's `waitingFor` when it waits for a choice in `environment`; else Refused."""
    if not INSTANCE_ID.fullmatch(release_id) or operation_kind(release_id) != "release":
        raise Refused(404, f"no release {one_line(release_id, 300)!r}")
    status = await durable_status(client, release_id)
    if status is None:
        raise Refused(404, f"no release {release_id!r}")
    release = ReleaseStatus.from_dict(decoded(status.custom_status))
    waiting = release.waiting_for
    if status.runtime_status in ACTIVE and isinstance(waiting, FailureWait) \
            and waiting.environment == environment and waiting.event:
        return waiting
    if status.runtime_status not in ACTIVE:
        now = f"it has ended ({status.runtime_status.value})"
    elif isinstance(waiting, FailureWait):
        now = f"its failed deployment waits in {waiting.environment}"
    else:
        step = release.step
        now = f"it is at step {step!r}" if step else "it is running"
    raise Refused(409, f"{release_id} is not waiting for a rollback-or-keep decision in "
                       f"{one_line(environment, 80)} ({now}); nothing was changed")
