"""The app's process-wide parts, from app settings: the release policy (loaded again when its
file changes) and the ledger (one per storage account and table prefix, sync and async).

Every trigger and activity takes them from here, so a process holds one cached policy and
one ledger. Does not check callers' credentials: see shared/ingest/webhook_token.py.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from shared.ledger.aio import AsyncLedger
from shared.ledger.store import Ledger
from shared.policy.loader import load_policy, policy_path

_lock = threading.Lock()
_policy: tuple[tuple[str, float], Any] | None = None
_ledgers: dict[tuple[str, str], Ledger] = {}


def app_policy() -> Any:
    """The release policy, loaded again when its file changed (PolicyError when invalid)."""
    global _policy
    key = _policy_key()
    with _lock:
        if _policy is None or _policy[0] != key:
            _policy = (key, load_policy(Path(key[0])))
        return _policy[1]


async def app_policy_async() -> Any:
    """`app_policy()` from the event loop: a thread only to load a changed file."""
    current = _policy
    if current is not None and current[0] == _policy_key():
        return current[1]
    return await asyncio.to_thread(app_policy)


def _policy_key() -> tuple[str, float]:
    path = policy_path()
    try:
        return str(path), path.stat().st_mtime
    except OSError:
        return str(path), -1.0


def app_ledger() -> Ledger:
    """The ledger of `AzureWebJobsStorage` and `LEDGER_TABLE_PREFIX`, one per process."""
    key = (os.environ.get("AzureWebJobsStorage", ""), os.environ.get("LEDGER_TABLE_PREFIX", ""))
    with _lock:
        if key not in _ledgers:
            _ledgers[key] = Ledger.from_app_settings()
        return _ledgers[key]


def app_async_ledger() -> AsyncLedger:
    """`app_ledger()` for the running event loop: the per-delivery calls without threads."""
    return AsyncLedger.of(app_ledger())
