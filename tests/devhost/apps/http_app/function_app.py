"""HTTP triggers exercising routes, constraints, request fields and response shapes."""

import asyncio
import base64
import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def as_json(value: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value), status_code=status, mimetype="application/json")


@app.route(methods=["GET"])
def hello(req: func.HttpRequest) -> str:
    return f"Hello, {req.params.get('name', 'world')}"


@app.route(route="echo/{*path}", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({
        "method": req.method,
        "url": req.url,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "x_test": req.headers.get("X-Test"),
        "body": base64.b64encode(req.get_body()).decode(),
    })


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"by": "id", **req.route_params})


@app.route(route="items/{name:alpha}", methods=["GET"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"by": "name", **req.route_params})


@app.route(route="items/new", methods=["GET"])
def item_new(req: func.HttpRequest) -> func.HttpResponse:
    return as_json({"by": "literal"})


@app.route(route="typed/{g:guid}/{b:bool}/{d:double}")
def typed(req: func.HttpRequest) -> func.HttpResponse:
    return as_json(dict(req.route_params))


@app.route(route="opt/{id?}")
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return as_json(dict(req.route_params))


@app.route(route="custom")
def custom(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("créé", status_code=201, headers={"X-Custom": "yes"},
                             mimetype="text/html", charset="utf-8")


@app.route(route="bytes")
def raw_bytes(req: func.HttpRequest) -> bytes:
    return b"\x00\x01binary"


@app.route(route="nothing")
def nothing(req: func.HttpRequest) -> None:
    return None


@app.route(route="boom")
def boom(req: func.HttpRequest) -> str:
    raise RuntimeError("secret-detail-123 must not reach the client")


@app.route(route="wrong-type")
def wrong_type(req: func.HttpRequest) -> dict:
    return {"not": "allowed"}


@app.route(route="ctx")
def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return as_json({"function_name": context.function_name,
                    "invocation_id": context.invocation_id,
                    "directory": context.function_directory})


@app.route(route="slow-async")
async def slow_async(req: func.HttpRequest) -> str:
    await asyncio.sleep(0.01)
    return "async done"


@app.function_name("out_binding")
@app.generic_trigger(arg_name="req", type="httpTrigger", route="out", methods=["GET"])
@app.generic_output_binding(arg_name="res", type="http")
def out_binding(req: func.HttpRequest, res: func.Out[func.HttpResponse]) -> None:
    res.set(func.HttpResponse("from Out", status_code=202))
