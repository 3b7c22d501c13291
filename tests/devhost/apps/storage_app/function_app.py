"""An HTTP function that calls Azure Table Storage through the SDK (for the log level tests)."""

import json
import os

import azure.functions as func
from azure.data.tables import TableServiceClient

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="tables", methods=["GET"])
def tables(req: func.HttpRequest) -> func.HttpResponse:
    service = TableServiceClient.from_connection_string(os.environ["AzureWebJobsStorage"])
    names = sorted(table.name for table in service.list_tables())
    return func.HttpResponse(json.dumps(names), mimetype="application/json")
