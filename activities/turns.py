"""`deploy_turn`: whether a release may deploy in an environment now, taking its turn if so.

The rules are in shared/releases/turns.py, the atomic turn in shared/ledger/turns.py. Safe
to repeat: a release that already holds the turn keeps it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import azure.durable_functions as df

from shared.ingest.context import app_ledger
from shared.ledger.turns import DeployTurns
from shared.releases.turns import deploying, is_older, operation_deploying

bp = df.Blueprint()
TAKE_ATTEMPTS = 3


@bp.activity_trigger(input_name="request")
def deploy_turn(request: dict) -> dict:
    """Take the environment's turn for the release: `waitFor` names who deploys there first;
    `newer` what runs there when it is a newer version than the release's."""
    ledger = app_ledger()
    service, environment, me = request["service"], request["environment"], request["releaseId"]
    operation = operation_deploying(ledger.releases(service, state="Running"), environment)
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
        if current is not None and current.release_id != me else None
    newer = None
    if running is not None and is_older(request["version"], running.version):
        newer = {"releaseId": running.release_id, "version": running.version}
    return {"waitFor": None, "newer": newer}


class TurnContended(RuntimeError):
    """Others kept taking the turn first; worth another try."""
