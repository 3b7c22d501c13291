"""`claim_stage`: mark a release `Deploying` in an environment and take the environment's turn.

Claim first, then the turn: whoever finds this release holding the turn also finds it
deploying. The rules are in shared/releases/turns.py, the atomic turn in
shared/ledger/turns.py. Safe to repeat: a release that already holds the turn keeps it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import azure.durable_functions as df

from shared.ingest.context import app_async_ledger, app_ledger
from shared.ledger.turns import DeployTurns
from shared.releases.turns import deploying, is_older, operation_deploying

bp = df.Blueprint()
TAKE_ATTEMPTS = 3


@bp.activity_trigger(input_name="request")
async def claim_stage(request: dict) -> dict:
    """Record the release's step (`record`, as `record_release` takes it), then its turn:
    `waitFor` names who deploys there first; `newer` what runs there when it is a newer
    version than the release's."""
    record = request["record"]
    await app_async_ledger().record_progress(record)
    return await asyncio.to_thread(take_turn, record["service"], record["environment"],
                                   record["releaseId"], request["version"],
                                   bool(request.get("olderAllowed")))


def take_turn(service: str, environment: str, me: str, version: str,
              older_allowed: bool = False) -> dict:
    """Wait for an operation deploying there, or the turn's live holder; else hold the turn."""
    ledger = app_ledger()
    operation = operation_deploying(ledger.releases(service, state="Running"), environment, me)
    if operation is not None:
        return {"waitFor": operation, "newer": None}
    turns = DeployTurns.beside(ledger)
    for _ in range(TAKE_ATTEMPTS):
        holder = turns.holder(service, environment)
        if holder is not None and holder.release_id == me:
            break
        if holder is not None and deploying(
                ledger.get_release(holder.release_id, service=service), environment):
            return {"waitFor": holder.release_id, "newer": None}
        if turns.take(service, environment, me, datetime.now(UTC), replacing=holder):
            break
    else:
        raise TurnContended(f"the deploy turn of {service}/{environment} changed hands"
                            f" {TAKE_ATTEMPTS} times while {me} tried to take it")
    current = ledger.environment_state(service, environment).current
    running = ledger.get_release(current.release_id, service=service) \
        if current is not None and current.release_id != me and not older_allowed else None
    newer = None
    if running is not None and is_older(version, running.version):
        newer = {"releaseId": running.release_id, "version": running.version}
    return {"waitFor": None, "newer": newer}


class TurnContended(RuntimeError):
    """Others kept taking the turn first; worth another try."""
