"""`record_release` and `record_deployment`: the orchestrations' writes to the ledger.

`record_release` runs on the event loop (async ledger); `record_deployment` in a thread. A
record that ends a stage also wakes whoever waits for that environment's turn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import azure.durable_functions as df

from activities.boundary import marks_failures
from activities.turns import wake_waiters
from blueprints import blueprint
from shared.app_context import app_async_ledger, app_ledger
from shared.ledger.records import DeployedChart, helm_revision

bp = blueprint()


@bp.activity_trigger(input_name="record")
@bp.durable_client_input(client_name="client")
@marks_failures
async def record_release(record: dict[str, Any],
                         client: df.DurableOrchestrationClient) -> dict[str, Any]:
    """Write one step of the release into its row: one request, no read (see
    `shared.ledger.records.progress_entity`); the creation time and earlier stages stay.
    A stage that ended (`stageFinished`) frees its environment: its waiters are woken."""
    await app_async_ledger().record_progress(record)
    if record.get("stageFinished") and record.get("environment"):
        await wake_waiters(client, record["service"], record["environment"],
                           record["releaseId"])
    return {"releaseId": record["releaseId"], "state": record["state"]}


@bp.activity_trigger(input_name="record")
@marks_failures
def record_deployment(record: dict[str, Any]) -> dict[str, Any]:
    """What now runs in an environment (a Helm target's chart and revision with it, when the
    request names them); a verified deployment is also its last good one."""
    ledger = app_ledger()
    at = datetime.fromisoformat(record["at"])
    args = (record["service"], record["environment"], record["releaseId"], record["digest"],
            record["image"])
    chart = DeployedChart.from_dict(record.get("chart"))
    revision = helm_revision(record.get("revision"))
    ledger.set_current(*args, at=at, chart=chart, revision=revision)
    if record.get("good"):
        ledger.mark_good(*args, at=at, chart=chart, revision=revision)
    return {"environment": record["environment"], "good": bool(record.get("good"))}
