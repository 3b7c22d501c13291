"""`claim_stage`: mark a release `Deploying` in an environment and take the environment's turn;
`wake_waiters`: what a holder does when it ends its stage there.

Claim first, then the turn: whoever finds this release holding the turn also finds it
deploying. A claim that must wait registers the event it will wait on, then looks again;
whoever ends a stage writes that first, then raises the event to everyone registered, so
at least one of the two sees the other (a wake-up lost anyway costs one poll). The rules
are in shared/releases/turns.py, the atomic turn and the waiters in shared/ledger/turns.py.
Safe to repeat: a release that already holds the turn keeps it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.app_context import app_async_ledger, app_ledger
from shared.ledger.errors import LedgerError
from shared.ledger.store import Ledger
from shared.ledger.turns import DeployTurns, TurnWaiters, Waiter
from shared.releases.turns import deploying, is_older, operation_deploying
from shared.text import one_line

bp = blueprint()
log = logging.getLogger(__name__)
TAKE_ATTEMPTS = 3
WAKE_SECONDS = 10  # a wake-up taking longer is given up: the waiter's poll still comes


@bp.activity_trigger(input_name="request")
@marks_failures
async def claim_stage(request: dict[str, Any]) -> dict[str, Any]:
    """Record the release's step (`record`, as `record_release` takes it), then its turn:
    `waitFor` names who deploys there first; `newer` what runs there when it is a newer
    version than the release's. With `wake`, a release that must wait is woken by that
    event; `waited` says an earlier claim registered it."""
    record = request["record"]
    await app_async_ledger().record_progress(record)
    return await asyncio.to_thread(try_turn, record["service"], record["environment"],
                                   record["releaseId"], request["version"],
                                   bool(request.get("olderAllowed")), request.get("wake"),
                                   bool(request.get("waited")))


def try_turn(service: str, environment: str, me: str, version: str,
             older_allowed: bool = False, wake: str | None = None,
             waited: bool = False) -> dict[str, Any]:
    """One try at the environment's turn: who to wait for (an operation deploying there, or
    the turn's live holder), else the turn is `me`'s; and a newer version running there."""
    ledger = app_ledger()
    first = ahead(ledger, service, environment, me)
    if first is not None and wake:
        waiters = TurnWaiters.beside(ledger)
        waiters.register(service, environment, me, wake, datetime.now(UTC))
        first = ahead(ledger, service, environment, me)  # it may have ended before we said so
        waited = waited or first is None
    if first is not None:
        return {"waitFor": first, "newer": None}
    if waited:
        TurnWaiters.beside(ledger).forget(service, environment, me)
    current = ledger.environment_state(service, environment).current
    running = ledger.get_release(current.release_id, service=service) \
        if current is not None and current.release_id != me and not older_allowed else None
    newer = None
    if running is not None and is_older(version, running.version):
        newer = {"releaseId": running.release_id, "version": running.version}
    return {"waitFor": None, "newer": newer}


def ahead(ledger: Ledger, service: str, environment: str, me: str) -> str | None:
    """Who deploys there before `me`: an operation, or the turn's live holder; None once
    `me` holds the turn."""
    operation = operation_deploying(ledger.releases(service, state="Running"), environment, me)
    if operation is not None:
        return operation
    turns = DeployTurns.beside(ledger)
    for _ in range(TAKE_ATTEMPTS):
        holder = turns.holder(service, environment)
        if holder is not None and holder.release_id == me:
            return None
        if holder is not None and deploying(
                ledger.get_release(holder.release_id, service=service), environment):
            return holder.release_id
        if turns.take(service, environment, me, datetime.now(UTC), replacing=holder):
            return None
    raise TurnContended(f"the deploy turn of {service}/{environment} changed hands"
                        f" {TAKE_ATTEMPTS} times while {me} tried to take it")


async def wake_waiters(client: df.DurableOrchestrationClient, service: str, environment: str,
                       me: str) -> list[str]:
    """Raise each registered waiter's event, now that `me` ended its stage in `environment`;
    who was woken. Never raises: a lost wake-up only costs the waiter its next poll."""
    try:
        async with asyncio.timeout(WAKE_SECONDS):
            waiters = TurnWaiters.beside(app_ledger())
            found = await asyncio.to_thread(waiters.waiting, service, environment)
            woken = await asyncio.gather(*(
                _wake(client, waiters, service, environment, me, waiter) for waiter in found))
    except Exception as failure:  # the holder goes on, whatever happened here
        log.warning("%s could not wake who waits for the turn of %s/%s: %s", me, service,
                    environment, _said(failure))
        return []
    return [waiter for waiter in woken if waiter]


async def _wake(client: df.DurableOrchestrationClient, waiters: TurnWaiters, service: str,
                environment: str, me: str, waiter: Waiter) -> str | None:
    """Raise one waiter's event (tolerating an instance that ended), then drop its row as read."""
    woken = None
    if waiter.release_id != me:
        try:
            await client.raise_event(waiter.release_id, waiter.event,
                                     {"environment": environment, "freedBy": me})
            woken = waiter.release_id
        except Exception as failure:  # an instance that ended meanwhile, say
            log.info("%s: %s waits no more for the turn of %s/%s: %s", me, waiter.release_id,
                     service, environment, _said(failure))
    await asyncio.to_thread(waiters.forget, service, environment, waiter.release_id,
                            waiter.etag)
    return woken


def _said(failure: Exception) -> str:
    """A failure for the log: the Durable client's and the ledger's own words (instance ids,
    tables), else only its type, as a transport error may quote a URL."""
    if type(failure) is Exception or isinstance(failure, LedgerError):
        return one_line(failure, 200)
    return type(failure).__name__


class TurnContended(RuntimeError):
    """Others kept taking the turn first; worth another try."""
