"""Reports environment variables so tests can see what local.settings.json set."""

import json
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
AT_IMPORT = os.environ.get("DEVHOST_TEST_FROM_FILE")


@app.route(route="env", methods=["GET"])
def env(req: func.HttpRequest) -> func.HttpResponse:
    names = ["DEVHOST_TEST_FROM_FILE", "DEVHOST_TEST_PRESET", "DEVHOST_TEST_NUMBER"]
    body = {name: os.environ.get(name) for name in names}
    body["at_import"] = AT_IMPORT
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
