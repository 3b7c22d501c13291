"""Whose turn it is to deploy in an environment, and whether a newer version is already there.

One release at a time deploys in an environment: it holds the environment's turn (an
entry in the ledger's Turns table, taken atomically) while its stage there is `Deploying`;
a holder whose stage moved on (healthy, rolled back, superseded, or it ended) holds nothing.
Manual rollbacks and redeploys take turns too (and may put an older version back); nothing
deploys while one of them deploys there. A release never deploys an older version over a
newer one. A waiter names the event it waits on (`turn_event`); whoever ends a stage there
raises it, so the waiter tries again at once rather than at its next poll. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.ledger.records import ReleaseRecord
from shared.policy.versions import version_key
from shared.releases.operations import operation_kind

DEPLOYING = "Deploying"


def deploying(row: ReleaseRecord | None, environment: str) -> bool:
    """Whether this release (or operation) is deploying in `environment` right now."""
    stage = row.stages.get(environment) if row is not None else None
    return row is not None and row.state == "Running" and stage is not None \
        and stage.state == DEPLOYING


def operation_deploying(rows: Iterable[ReleaseRecord], environment: str,
                        me: str | None = None) -> str | None:
    """A manual rollback or redeploy (other than `me`) deploying in `environment`, if any."""
    for row in rows:
        if row.release_id != me and operation_kind(row.release_id) != "release" \
                and deploying(row, environment):
            return row.release_id
    return None


def turn_event(environment: str, number: int) -> str:
    """The event name of the `number`-th wait (1-based) for `environment`'s turn.

    Each wait gets its own name: the SDK hands an event raised before its wait to every
    later wait of the same name."""
    return f"turn:{environment}:{number}"


def is_older(version: str, running: str | None) -> bool:
    """Whether `version` precedes the version running now (tags that are not versions never do)."""
    mine, theirs = version_key(version), version_key(running) if running else None
    return mine is not None and theirs is not None and mine < theirs
