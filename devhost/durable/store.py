"""The task hub: instances, histories, inboxes and activity work in one SQLite file.

WAL mode, one connection, used only from the engine's event-loop thread. Every
orchestrator episode and every activity completion is one transaction, so a
process killed at any moment leaves a consistent hub behind. Holds no policy:
what to write is decided by the engine.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")
ACTIVE = ("Pending", "Running", "Suspended", "ContinuedAsNew")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    version TEXT
);
CREATE INDEX IF NOT EXISTS instances_created ON instances (created_at);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    kind TEXT NOT NULL,
    timer_id INTEGER,
    visible_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_due ON inbox (visible_at);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox (instance_id, id);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT
);
CREATE INDEX IF NOT EXISTS activities_instance ON activities (instance_id);
"""


@dataclass(frozen=True)
class Instance:
    """One row of `instances`."""

    instance_id: str
    name: str
    execution_id: str
    status: str
    input: str | None
    output: str | None
    custom_status: str | None
    created_at: str
    updated_at: str
    parent_instance_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    version: str | None = None  # from ExecutionStarted; NULL in hubs made before versioning

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class Message:
    """One row of `inbox`: a history event or a control message for an instance."""

    id: int
    instance_id: str
    execution_id: str | None
    kind: str
    body: Any


@dataclass(frozen=True)
class ActivityWork:
    """One row of `activities`: an activity to run (again, after a crash)."""

    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


class TaskHubStore:
    """SQLite persistence for one task hub."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a killed process; only an OS crash may lose the tail.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(instances)")}
        if "version" not in columns:  # a task hub written before orchestration versioning
            self._db.execute("ALTER TABLE instances ADD COLUMN version TEXT")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- instances -------------------------------------------------------------------------

    def instance(self, instance_id: str) -> Instance | None:
        row = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?",
            (instance_id,)).fetchone()
        return Instance(*row) if row else None

    def query(self, *, created_from: str | None = None, created_to: str | None = None,
              statuses: Iterable[str] = (), prefix: str | None = None) -> list[Instance]:
        """Instances matching every given filter, oldest first."""
        sql, args = _filters(created_from, created_to, statuses, prefix)
        rows = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances{sql} ORDER BY created_at, instance_id",
            args).fetchall()
        return [Instance(*row) for row in rows]

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
        return [json.loads(event) for (event,) in rows]

    # --- work ------------------------------------------------------------------------------

    def ready_instances(self, now: float, limit: int) -> list[str]:
        """Instances with a due message they can take (suspended ones only take control)."""
        rows = self._db.execute(
            "SELECT m.instance_id FROM inbox m"
            " LEFT JOIN instances s ON s.instance_id = m.instance_id"
            " WHERE m.visible_at <= ?"
            "   AND (s.status IS NULL OR s.status != 'Suspended'"
            "        OR m.kind IN ('terminate', 'suspend', 'resume'))"
            " GROUP BY m.instance_id ORDER BY MIN(m.id) LIMIT ?", (now, limit))
        return [instance_id for (instance_id,) in rows]

    def due_messages(self, instance_id: str, now: float) -> list[Message]:
        rows = self._db.execute(
            "SELECT id, instance_id, execution_id, kind, body FROM inbox"
            " WHERE instance_id = ? AND visible_at <= ? ORDER BY id", (instance_id, now))
        return [Message(i, iid, ex, kind, json.loads(body)) for i, iid, ex, kind, body in rows]

    def next_due(self, now: float) -> float | None:
        """When the earliest message that is not yet visible becomes visible."""
        row = self._db.execute(
            "SELECT MIN(visible_at) FROM inbox WHERE visible_at > ?", (now,)).fetchone()
        return row[0]

    def pending_activities(self, exclude: set[int], limit: int) -> list[ActivityWork]:
        if limit <= 0:
            return []
        rows = self._db.execute(
            "SELECT id, instance_id, execution_id, task_id, name, input FROM activities"
            " ORDER BY id LIMIT ?", (limit + len(exclude),)).fetchall()
        return [ActivityWork(*row) for row in rows if row[0] not in exclude][:limit]

    # --- writes (call inside `transaction()`) -----------------------------------------------

    def put_instance(self, instance: Instance) -> None:
        """Insert or replace an instance row (a restart with the same id replaces it)."""
        self._db.execute(
            f"INSERT OR REPLACE INTO instances ({_INSTANCE_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (instance.instance_id, instance.name, instance.execution_id, instance.status,
             instance.input, instance.output, instance.custom_status, instance.created_at,
             instance.updated_at, instance.parent_instance_id, instance.parent_execution_id,
             instance.parent_task_id, instance.version))

    def update_instance(self, instance_id: str, **fields: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self._db.execute(f"UPDATE instances SET {assignments} WHERE instance_id = ?",
                         (*fields.values(), instance_id))

    def append_history(self, instance_id: str, start: int, events: list[dict[str, Any]]) -> None:
        self._db.executemany(
            "INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
            [(instance_id, start + i, json.dumps(e)) for i, e in enumerate(events)])

    def send(self, instance_id: str, kind: str, body: Any, *, visible_at: float,
             execution_id: str | None = None, timer_id: int | None = None) -> None:
        """Queue a message for an instance, visible from `visible_at` (epoch seconds)."""
        self._db.execute(
            "INSERT INTO inbox (instance_id, execution_id, kind, timer_id, visible_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (instance_id, execution_id, kind, timer_id, visible_at, json.dumps(body)))

    def defer_messages(self, instance_id: str, now: float, until: float) -> None:
        """Hide an instance's due messages until `until`: work left for another worker."""
        self._db.execute(
            "UPDATE inbox SET visible_at = ? WHERE instance_id = ? AND visible_at <= ?",
            (until, instance_id, now))

    def delete_messages(self, ids: Iterable[int]) -> None:
        self._db.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in ids])

    def cancel_timers(self, instance_id: str, timer_ids: Iterable[int]) -> None:
        self._db.executemany(
            "DELETE FROM inbox WHERE instance_id = ? AND kind = 'timer' AND timer_id = ?",
            [(instance_id, t) for t in timer_ids])

    def add_activity(self, instance_id: str, execution_id: str, task_id: int, name: str,
                     input_json: str | None) -> None:
        self._db.execute(
            "INSERT INTO activities (instance_id, execution_id, task_id, name, input)"
            " VALUES (?, ?, ?, ?, ?)", (instance_id, execution_id, task_id, name, input_json))

    def finish_activity(self, work_id: int) -> bool:
        """Remove a finished activity; False when it was already gone (instance ended)."""
        return self._db.execute("DELETE FROM activities WHERE id = ?", (work_id,)).rowcount > 0

    def drop_pending_work(self, instance_id: str) -> None:
        """Forget queued activities and timers of an instance that ended or restarted."""
        self._db.execute("DELETE FROM activities WHERE instance_id = ?", (instance_id,))
        self._db.execute("DELETE FROM inbox WHERE instance_id = ? AND kind = 'timer'",
                         (instance_id,))

    def clear_history(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))

    def purge(self, instance_ids: Iterable[str]) -> int:
        """Delete instances with their history and messages; return how many existed."""
        deleted = 0
        for instance_id in instance_ids:
            deleted += self._db.execute(
                "DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount
            for table in ("history", "inbox", "activities"):
                self._db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))
        return deleted

    def counts(self) -> dict[str, int]:
        """How many instances per runtime status (for health and benchmarks)."""
        rows = self._db.execute("SELECT status, COUNT(*) FROM instances GROUP BY status")
        return dict(rows.fetchall())


_INSTANCE_COLUMNS = (
    "instance_id, name, execution_id, status, input, output, custom_status, created_at,"
    " updated_at, parent_instance_id, parent_execution_id, parent_task_id, version")


def _filters(created_from: str | None, created_to: str | None, statuses: Iterable[str],
             prefix: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if created_from:
        clauses.append("created_at >= ?")
        args.append(created_from)
    if created_to:
        clauses.append("created_at <= ?")
        args.append(created_to)
    statuses = list(statuses)
    if statuses:
        clauses.append(f"status IN ({','.join('?' * len(statuses))})")
        args.extend(statuses)
    if prefix:
        clauses.append("substr(instance_id, 1, ?) = ?")
        args.extend([len(prefix), prefix])
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args
