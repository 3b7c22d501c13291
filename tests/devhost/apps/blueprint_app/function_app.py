"""An app assembled from a blueprint, served under a custom route prefix."""

import azure.functions as func
from bp_catalog import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)


@app.route(route="ping", methods=["GET"])
def ping(req: func.HttpRequest) -> str:
    return "pong"
