"""`mark_release_stage`: an operation's mark on a release's row in the ledger.

A rollback marks the release it took out of an environment RolledBack there and the one it
put back Healthy; a redeploy marks the release it deployed. Only that one stage (and the
row's update time) changes: the release's own state, step and reason stay its own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.app_context import app_ledger
from shared.ledger.records import StageState, utc

bp = blueprint()


@bp.activity_trigger(input_name="request")
@marks_failures
def mark_release_stage(request: dict[str, Any]) -> dict[str, Any]:
    """Set `state` and `detail` of the release's stage in `environment`; safe to repeat."""
    ledger = app_ledger()
    at = utc(datetime.fromisoformat(request["at"]))
    row = ledger.get_release(request["releaseId"], service=request["service"])
    if row is None:
        return {"releaseId": request["releaseId"], "updated": False}
    environment = request["environment"]
    previous = row.stages.get(environment)
    stages = {**row.stages, environment: StageState(
        state=request["state"], started=previous.started if previous else at, finished=at,
        detail=request.get("detail"))}
    ledger.upsert_release(replace(row, stages=stages, updated_at=max(at, row.updated_at)))
    return {"releaseId": row.release_id, "updated": True}
