"""`record_release` and `record_deployment`: the orchestrations' writes to the ledger.

`record_release` runs on the event loop (async ledger); `record_deployment` in a thread.
"""

from __future__ import annotations

from datetime import datetime

import azure.durable_functions as df

from shared.ingest.context import app_async_ledger, app_ledger

bp = df.Blueprint()


@bp.activity_trigger(input_name="record")
async def record_release(record: dict) -> dict:
    """Write one step of the release into its row: one request, no read (see
    `shared.ledger.records.progress_entity`); the creation time and earlier stages stay."""
    await app_async_ledger().record_progress(record)
    return {"releaseId": record["releaseId"], "state": record["state"]}


@bp.activity_trigger(input_name="record")
def record_deployment(record: dict) -> dict:
    """What now runs in an environment; a verified deployment is also its last good one."""
    ledger = app_ledger()
    at = datetime.fromisoformat(record["at"])
    args = (record["service"], record["environment"], record["releaseId"], record["digest"],
            record["image"])
    ledger.set_current(*args, at=at)
    if record.get("good"):
        ledger.mark_good(*args, at=at)
    return {"environment": record["environment"], "good": bool(record.get("good"))}
