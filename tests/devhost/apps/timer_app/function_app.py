"""Timer triggers that record each firing; an HTTP function reads the records back."""

import json
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
fired: list[dict] = []
running = {"now": 0, "max": 0}
lock = threading.Lock()


def record(name: str, timer: func.TimerRequest) -> None:
    fired.append({"name": name, "past_due": timer.past_due,
                  "next": timer.schedule_status.get("Next")})


@app.timer_trigger(schedule="*/5 * * * * *", arg_name="timer")
def every_five_seconds(timer: func.TimerRequest) -> None:
    record("every_five_seconds", timer)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
def yearly_and_on_startup(timer: func.TimerRequest) -> None:
    record("yearly_and_on_startup", timer)


@app.timer_trigger(schedule="00:00:30", arg_name="timer")
def slow_interval(timer: func.TimerRequest) -> None:
    with lock:
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
    time.sleep(0.3)
    record("slow_interval", timer)
    with lock:
        running["now"] -= 1


@app.route(route="fired", methods=["GET"])
def report(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"fired": fired, "max_running": running["max"]}),
                             mimetype="application/json")
