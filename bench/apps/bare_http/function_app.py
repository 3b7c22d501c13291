"""Baseline app for bench/ingest.py: `POST /api/registry/events` that only answers 202.

Served by devhost in the same run as the real app, so the bench can tell devhost's
own HTTP cost from what ingestion adds. Reads nothing, stores nothing. Not deployed.
"""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="registry/events", methods=["POST"])
async def registry_events(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=202)
