"""Catalog functions on a Blueprint (module name unique across the sample apps)."""

import azure.functions as func

bp = func.Blueprint()


@bp.function_name("catalog_item")
@bp.route(route="catalog/{sku:length(3,8)}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"item {req.route_params['sku']}")
