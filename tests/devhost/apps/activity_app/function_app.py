"""Durable activities and an orchestrator, for invoker tests (no engine involved)."""

import threading
import time

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
running = {"now": 0, "max": 0}
lock = threading.Lock()


@app.activity_trigger(input_name="order")
def price_order(order: dict) -> dict:
    return {"sku": order["sku"], "total": order["qty"] * 2.5}


@app.function_name("shout")
@app.activity_trigger(input_name="text")
async def make_loud(text: str) -> str:
    return text.upper() + "!"


@app.activity_trigger(input_name="seconds")
def hold_slot(seconds: float) -> int:
    with lock:
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
    time.sleep(seconds)
    with lock:
        running["now"] -= 1
    return running["max"]


@app.activity_trigger(input_name="anything")
def explode(anything: object) -> None:
    raise ValueError("activity exploded")


@app.function_name("process_order")
@app.orchestration_trigger(context_name="context")
def order_workflow(context: df.DurableOrchestrationContext):
    priced = yield context.call_activity(price_order, context.get_input())
    return priced
