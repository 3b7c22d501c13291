"""Sample app for orchestration versioning, as deployed first (defaultVersion 1.0).

`order` validates and pays, waits for "go", then starts `child` twice (once with an explicit
version). orders_v2 is the next deployment of the same app.
"""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, None,
                                         version=req.params.get("version"))
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def order(context: df.DurableOrchestrationContext):
    steps = [(yield context.call_activity("step", "validate"))]
    steps.append((yield context.call_activity("step", "pay")))
    context.set_custom_status("waiting")
    yield context.wait_for_external_event("go")
    child = yield context.call_sub_orchestrator("child")
    pinned = yield context.call_sub_orchestrator("child", version="0.9")
    return {"version": context.version, "steps": steps, "child": child, "pinned": pinned}


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    return context.version


@app.activity_trigger(input_name="what")
def step(what: str) -> str:
    return what
