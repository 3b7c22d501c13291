"""Helm actions that outlive the activity that starts them, one at a time per release.

Helm's upgrade and rollback wait for readiness until Helm's own timeout, and cancelling one
leaves Helm working and rewriting its records later (../shared/notes/helm.md). So the deploy
activity starts the action on a thread of this process and returns; later activities look
at it for a bounded time and at what Helm recorded. Another process sees only the records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str, str]  # cluster, namespace, release


@dataclass
class Run:
    """One Helm action on one release: what, for which release of ours, and how it ended."""

    key: Key
    action: str
    release_id: str | None
    finished: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    result: Any = None

    def wait(self, seconds: float) -> bool:
        """Wait at most `seconds` for the action to return; whether it has."""
        return self.finished.wait(max(0.0, seconds))


_runs: dict[Key, Run] = {}
_lock = threading.Lock()


class ReleaseBusy(RuntimeError):
    """Another Helm action on the release still runs in this process (worth a retry)."""


def start(key: Key, action: str, release_id: str | None, work: Callable[[], Any]) -> Run:
    """Run `work` on a thread as `action` on the release; the running one when it is the same
    action for the same release of ours (a retried activity), else ReleaseBusy while one runs."""
    with _lock:
        running = _runs.get(key)
        if running is not None and not running.finished.is_set():
            if (running.action, running.release_id) == (action, release_id):
                return running
            raise ReleaseBusy(f"helm {running.action} of release {key[2]} in namespace"
                              f" {key[1]} is still running")
        run = Run(key, action, release_id)
        _runs[key] = run

    def body() -> None:
        try:
            run.result = work()
        except BaseException as error:  # noqa: BLE001 - handed to whoever looks next
            run.error = error
        finally:
            run.finished.set()

    threading.Thread(target=body, name=f"helm-{action}-{key[2]}", daemon=True).start()
    return run


def current(key: Key) -> Run | None:
    """The latest action on the release in this process, running or finished."""
    with _lock:
        return _runs.get(key)
