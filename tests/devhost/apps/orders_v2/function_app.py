"""Sample app for orchestration versioning, the next deployment (defaultVersion 2.0).

`order` changed in a way that does not replay (a discount step before paying), so the change
is taken only by instances of version 2.0 or later; 1.0 instances keep the old path.
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
    if context.version == "1.0":
        steps.append((yield context.call_activity("step", "pay")))
    else:
        steps.append((yield context.call_activity("discount", "discount")))
        steps.append((yield context.call_activity("step", "pay less")))
    context.set_custom_status("waiting")
    yield context.wait_for_external_event("go")
    child = yield context.call_sub_orchestrator("child")
    pinned = yield context.call_sub_orchestrator("child", version="0.9")
    return {"version": context.version, "steps": steps, "child": child, "pinned": pinned}


@app.orchestration_trigger(context_name="context")
def rounds(context: df.DurableOrchestrationContext):
    done = context.get_input() or 0
    if done < 2:
        context.continue_as_new(done + 1)
        return None
    return context.version


@app.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    return context.version


@app.activity_trigger(input_name="what")
def step(what: str) -> str:
    return what


@app.activity_trigger(input_name="what")
def discount(what: str) -> str:
    return what
