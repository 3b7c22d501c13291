"""`record_release` and `record_deployment`: the orchestrations' writes to the ledger."""

from __future__ import annotations

from datetime import datetime

import azure.durable_functions as df

from shared.ingest.context import app_ledger
from shared.ledger.records import ReleaseRecord, StageState

bp = df.Blueprint()


@bp.activity_trigger(input_name="record")
def record_release(record: dict) -> dict:
    """Upsert the release row, keeping its creation time and earlier stages."""
    ledger = app_ledger()
    now = datetime.fromisoformat(record["updatedAt"])
    existing = ledger.get_release(record["releaseId"], service=record["service"])
    stages = dict(existing.stages) if existing else {}
    if record.get("environment") and record.get("stageState"):
        previous = stages.get(record["environment"])
        stages[record["environment"]] = StageState(
            state=record["stageState"], started=previous.started if previous else now,
            finished=now if record.get("stageFinished") else None,
            detail=record.get("reason"))
    row = ReleaseRecord(
        release_id=record["releaseId"], service=record["service"], version=record["version"],
        digest=record["digest"], state=record["state"],
        created_at=existing.created_at if existing else now, updated_at=now,
        environment=record.get("environment"), step=record.get("step"),
        reason=record.get("reason"), stages=stages)
    ledger.upsert_release(row)
    return {"releaseId": row.release_id, "state": row.state}


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
