"""`GET /api/health`: liveness, version, task hub, configuration source names and problems.

Reports which configuration sources are active and which settings are misconfigured (the
approval settings the policy's gates need: `status` is then `misconfigured`, still 200 so
that webhooks keep being served), never a setting's value. Does not probe dependencies
(storage, registry, Key Vault).
"""

from __future__ import annotations

import os

import azure.functions as func

from blueprints import blueprint
from shared.app_info import APP_ROOT, app_version, durable_hub_name
from shared.config_sources import detect_sources
from shared.readiness import app_problems
from triggers.responses import json_response

bp = blueprint()


@bp.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Answer with status, version, durable hub name, configuration sources and problems."""
    environ = dict(os.environ)
    problems = [{"setting": p.setting, "problem": p.message} for p in app_problems(environ)]
    return json_response(
        {
            "status": "misconfigured" if problems else "ok",
            "version": app_version(APP_ROOT),
            "durableHubName": durable_hub_name(APP_ROOT, environ),
            "configurationSources": [s.to_dict() for s in detect_sources(APP_ROOT, environ)],
            "problems": problems,
        }
    )
