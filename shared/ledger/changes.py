"""The changes book: what a release changes in each environment whose gate it reached.

One table `<prefix>Changes` beside the ledger's: a row per release (PartitionKey) and
environment (RowKey) holding the JSON that `request_approval` computed when the gate opened
(shared/releases/changes.py `ReleaseChanges.to_dict`). A gate opened again replaces its
row. Holds image labels, revisions, versions and release ids, never a secret.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from .errors import LedgerError
from .records import ReleaseRecord, table_key, utc
from .side_tables import SideTable
from .store import Ledger

MAX_CHANGES_CHARS = 30_000  # a Table string property holds 32 K characters


class ChangesBook(SideTable):
    """Reads and writes the changes of a release's gates next to a ledger."""

    name = "Changes"

    def record(self, release_id: str, environment: str, changes: dict[str, Any]) -> None:
        """Keep the changes of `release_id` at `environment`'s gate (again: the same row)."""
        text = json.dumps(changes, separators=(",", ":"))
        if len(text) > MAX_CHANGES_CHARS:
            text = json.dumps({**changes, "between": [], "moreBetween": 0,
                               "betweenUnknown": "too many to keep"})[:MAX_CHANGES_CHARS]
        entity = {"PartitionKey": table_key(release_id, "release id"),
                  "RowKey": table_key(environment, "environment"),
                  "Environment": environment, "Changes": text}
        self._call(f"record the changes of {release_id} in {environment}",
                   lambda table: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def changes(self, release_id: str) -> dict[str, dict[str, Any]]:
        """Environment → the changes recorded for the release (rows that do not read are
        left out)."""
        key = table_key(release_id, "release id")

        def read(table: TableClient) -> list[dict[str, Any]]:
            return list(table.query_entities("PartitionKey eq @key", parameters={"key": key}))

        found: dict[str, dict[str, Any]] = {}
        for entity in self._call(f"read the changes of {release_id}", read):
            try:
                data = json.loads(entity.get("Changes") or "")
            except ValueError:
                continue
            if isinstance(data, dict):
                found[str(entity.get("Environment"))] = data
        return found

    def find(self, release_id: str, environment: str) -> dict[str, Any] | None:
        """The changes recorded for the release at one environment's gate, or None."""
        def get(table: TableClient) -> Any:
            try:
                return table.get_entity(table_key(release_id, "release id"),
                                        table_key(environment, "environment"))
            except ResourceNotFoundError:
                return None

        entity = self._call(f"read the changes of {release_id} in {environment}", get)
        if entity is None:
            return None
        try:
            data = json.loads(entity.get("Changes") or "")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def releases_since(ledger: Ledger, service: str, since: datetime) -> list[ReleaseRecord]:
    """The service's releases created at or after `since`, oldest first: one partition's
    rows of that window, however long the ledger's history."""
    # A row whose first write was lost has no CreatedAt; it was created before its update.
    query = "PartitionKey eq @service and ( CreatedAt ge @since or UpdatedAt ge @since )"
    table = ledger.client.get_table_client(ledger.releases_table)
    try:
        entities = list(table.query_entities(query, parameters={
            "service": table_key(service, "service"), "since": utc(since)}))
    except AzureError as error:
        first = (str(getattr(error, "message", None) or error).splitlines() or [""])[0]
        raise LedgerError(f"ledger: list releases of {service} since {since.isoformat()} on"
                          f" table {ledger.releases_table} failed: {type(error).__name__}:"
                          f" {first[:200]}", operation="list releases",
                          table=ledger.releases_table) from error
    found = [ReleaseRecord.from_entity(entity) for entity in entities]
    return sorted((r for r in found if r.created_at >= utc(since)),
                  key=lambda r: (r.created_at, r.release_id))
