"""`POST /api/orchestrators/{name}`: start an HTTP-startable orchestration by name.

The JSON body (or nothing) becomes the orchestration input; the answer is the
Durable check-status response (202 with management URLs). Only orchestrations
listed in `orchestrations.HTTP_STARTABLE` can be started here: release
orchestrations start from registry events, not from this endpoint.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from blueprints import blueprint
from orchestrations import HTTP_STARTABLE
from triggers.http import parse_json_body
from triggers.responses import error_response

MAX_BODY = 64 * 1024

bp = blueprint()


@bp.route(route="orchestrators/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_orchestration(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """Start the named orchestration with the JSON body as input."""
    name = req.route_params.get("name", "")
    if name not in HTTP_STARTABLE:
        return error_response(404, f"no orchestration named {name!r} can be started over HTTP")
    body = req.get_body() or b""
    if len(body) > MAX_BODY:
        return error_response(413, f"body is larger than {MAX_BODY} bytes")
    try:
        payload = parse_json_body(body)
    except ValueError as error:
        return error_response(400, str(error))
    instance_id = await client.start_new(name, client_input=payload)
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    response.headers["Cache-Control"] = "no-store"  # in Azure its links carry the system key
    return response
