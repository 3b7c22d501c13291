"""Event Grid triggers that record what they receive, and an HTTP function to read it back."""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
received: list[dict] = []


def describe(event: func.EventGridEvent | func.CloudEvent) -> dict:
    if isinstance(event, func.CloudEvent):
        return {"schema": "cloudevents", "id": event.id, "type": event.type,
                "source": event.source, "subject": event.subject, "data": event.get_json()}
    return {"schema": "eventgrid", "id": event.id, "type": event.event_type,
            "topic": event.topic, "subject": event.subject, "data": event.get_json()}


@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    received.append(describe(event))


@app.event_grid_trigger(arg_name="event")
def picky(event: func.EventGridEvent) -> None:
    if event.get_json().get("fail"):
        raise ValueError("picky refuses this event")
    received.append(describe(event))


@app.route(route="received", methods=["GET"])
def seen(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(received), mimetype="application/json")
