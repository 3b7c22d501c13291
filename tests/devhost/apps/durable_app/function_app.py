"""Sample app for devhost's durable engine: one orchestrator per feature."""

import asyncio
import json
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_attempts: dict[str, int] = {}
_running = 0
_peak = 0
_lock = threading.Lock()


# --- HTTP entry points using the durable client binding -------------------------------------

@app.route(route="start/{name}/{instance_id?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["name"],
                                         req.route_params.get("instance_id"), payload)
    return client.create_check_status_response(req, instance_id)


@app.route(route="raise/{instance_id}/{event}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def raise_event(req: func.HttpRequest,
                      client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.raise_event(req.route_params["instance_id"], req.route_params["event"],
                             req.get_json())
    return func.HttpResponse(status_code=202)


@app.route(route="status/{instance_id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    found = await client.get_status(req.route_params["instance_id"], show_history=True)
    if not found.instance_id:
        return func.HttpResponse("not found", status_code=404)
    shown = {**found.to_json(), "history": getattr(found, "historyEvents", None)}
    return func.HttpResponse(json.dumps(shown, default=str), mimetype="application/json")


@app.route(route="manage/{instance_id}/{operation}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def manage(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id, operation = req.route_params["instance_id"], req.route_params["operation"]
    if operation == "purge":
        result = await client.purge_instance_history(instance_id)
        return func.HttpResponse(json.dumps({"deleted": result.instances_deleted}))
    await getattr(client, operation)(instance_id, "by test")
    return func.HttpResponse(status_code=202)


# --- orchestrators ------------------------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("hello", "a")
    second = yield context.call_activity(hello_async, "b")
    third = yield context.call_activity("hello", "c")
    return [first, second, third]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input()
    results = yield context.task_all([context.call_activity("slow_square", n)
                                      for n in range(count)])
    return {"results": results, "peak": (yield context.call_activity("peak_concurrency", None))}


@app.orchestration_trigger(context_name="context")
def flaky(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000,
                              max_number_of_attempts=3)
    try:
        return (yield context.call_activity_with_retry("fail_times", options, context.get_input()))
    except Exception as failure:
        return f"gave up: {failure}"


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    deadline = context.current_utc_datetime + timedelta(hours=72)
    timeout = context.create_timer(deadline)
    decision = context.wait_for_external_event("Decision")
    context.set_custom_status({"waitingFor": "Decision"})
    winner = yield context.task_any([decision, timeout])
    if winner == decision:
        timeout.cancel()
        return {"decision": decision.result}
    return {"decision": "expired"}


@app.orchestration_trigger(context_name="context")
def early_event(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "before")
    return (yield context.wait_for_external_event("Early"))


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator("chain", None, f"{context.instance_id}-child")
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000,
                              max_number_of_attempts=2)
    try:
        yield context.call_sub_orchestrator_with_retry("failing", options, "child boom")
        failed = None
    except Exception as failure:
        failed = str(failure)
    return {"child": child, "failed": failed}


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    state = context.get_input()
    context.set_custom_status({"value": state["value"]})
    if state["value"] >= state["until"]:
        return state["value"]
    yield context.call_activity("hello", str(state["value"]))
    context.continue_as_new({"value": state["value"] + 1, "until": state["until"]})


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    yield context.call_activity("hello", "x")
    raise ValueError(f"orchestrator exploded: {context.get_input()}")


@app.orchestration_trigger(context_name="context")
def fickle(context: df.DurableOrchestrationContext):
    """Schedules a different activity when DEVHOST_SAMPLE_FICKLE is set: not deterministic."""
    name = "hello_async" if os.environ.get("DEVHOST_SAMPLE_FICKLE") else "hello"
    first = yield context.call_activity(name, "1")
    second = yield context.wait_for_external_event("Continue")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def journal(context: df.DurableOrchestrationContext):
    """Writes a line per step to the file named in the input; used by the crash test."""
    path = context.get_input()["path"]
    yield context.call_activity("append_line", {"path": path, "line": "before"})
    decision = yield context.wait_for_external_event("Go")
    yield context.call_activity("append_line", {"path": path, "line": f"after {decision}"})
    return {"decision": decision}


@app.orchestration_trigger(context_name="context")
def long_history(context: df.DurableOrchestrationContext):
    total = 0
    for n in range(context.get_input()):
        total += yield context.call_activity("square", n)
    return total


# --- activities ---------------------------------------------------------------------------------

@app.activity_trigger(input_name="name")
def hello(name: str) -> str:
    return f"Hello {name}"


@app.activity_trigger(input_name="name")
async def hello_async(name: str) -> str:
    await asyncio.sleep(0)
    return f"Hello async {name}"


@app.activity_trigger(input_name="n")
def square(n: int) -> int:
    return n * n


@app.activity_trigger(input_name="n")
def slow_square(n: int) -> int:
    global _running, _peak
    with _lock:
        _running += 1
        _peak = max(_peak, _running)
    time.sleep(0.05)
    with _lock:
        _running -= 1
    return n * n


@app.activity_trigger(input_name="unused")
def peak_concurrency(unused: None) -> int:
    return _peak


@app.activity_trigger(input_name="request")
def fail_times(request: dict) -> str:
    key = request["key"]
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] <= request["failures"]:
        raise RuntimeError(f"attempt {_attempts[key]} failed")
    return f"succeeded on attempt {_attempts[key]}"


@app.activity_trigger(input_name="request")
def append_line(request: dict) -> str:
    with Path(request["path"]).open("a") as journal_file:
        journal_file.write(request["line"] + "\n")
    return request["line"]
