"""The release ledger: received events and their outcomes, releases, and what runs where.

`records` (the dataclasses and their table entities) and `connection` (app settings,
`UseDevelopmentStorage=true`) are pure; `store.Ledger` reads and writes Azure Table Storage,
and `aio.AsyncLedger` does its per-delivery calls on the event loop.
Does not decide anything: ingestion, orchestrations and the reconciler call it.
"""

from .aio import AsyncLedger
from .connection import DEFAULT_PREFIX, expand_connection_string
from .errors import LedgerError
from .records import (
    ACTIVE_STATES,
    OUTCOMES,
    RELEASE_STATES,
    DeployedChart,
    Deployment,
    DigestClaim,
    EnvironmentState,
    EventRecord,
    ReleaseRecord,
    StageState,
)
from .store import Ledger

__all__ = [
    "ACTIVE_STATES", "DEFAULT_PREFIX", "OUTCOMES", "RELEASE_STATES", "AsyncLedger", "DeployedChart",
    "Deployment",
    "DigestClaim", "EnvironmentState", "EventRecord", "Ledger", "LedgerError", "ReleaseRecord",
    "StageState", "expand_connection_string",
]
