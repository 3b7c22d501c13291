"""Benchmark app for devhost: a 3-activity chain and a chain of N calls (history length).

Loaded by bench/devhost.py through devhost's Host, like a user's app; the bench
starts orchestrations through the engine, the HTTP starter is there because a
real app has one. Not deployed.
"""

import json

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    payload = json.loads(req.get_body() or b"null")
    instance_id = await client.start_new(req.route_params["name"], None, payload)
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    tokyo = yield context.call_activity("say_hello", "Tokyo")
    seattle = yield context.call_activity("say_hello", "Seattle")
    london = yield context.call_activity("say_hello", "London")
    return [tokyo, seattle, london]


@app.orchestration_trigger(context_name="context")
def history(context: df.DurableOrchestrationContext):
    calls = int(context.get_input())
    for n in range(calls):
        yield context.call_activity("say_hello", str(n))
    return calls


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"
