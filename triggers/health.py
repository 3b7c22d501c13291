"""`GET /api/health`: liveness, version, task hub and configuration source names.

Reports which configuration sources are active, never a setting's value.
Does not probe dependencies (storage, registry, Key Vault).
"""

from __future__ import annotations

import os

import azure.functions as func

from shared.app_info import APP_ROOT, app_version, durable_hub_name
from shared.config_sources import detect_sources
from triggers.responses import json_response

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Answer with status, version, durable hub name and configuration source names."""
    environ = dict(os.environ)
    return json_response(
        {
            "status": "ok",
            "version": app_version(APP_ROOT),
            "durableHubName": durable_hub_name(APP_ROOT, environ),
            "configurationSources": [s.to_dict() for s in detect_sources(APP_ROOT, environ)],
        }
    )
