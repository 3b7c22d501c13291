"""Deploy turns: which release holds each service's environment, taken atomically.

One row per service and environment in `<prefix>Turns` naming the holding release.
Taking a free turn is an insert; taking over from a holder that moved on is a replace
conditional on the row's ETag, so of two releases taking the same turn at once exactly
one succeeds. Whether a holder still deploys is the caller's question: see
shared/releases/turns.py.

`<prefix>TurnWaiters` lists who waits for a turn and on which event, so that whoever ends
a stage there can wake them (`TurnWaiters`); a row is a hint, never a claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from .records import table_key, utc
from .side_tables import SideTable


@dataclass(frozen=True)
class Holder:
    """The release holding an environment's turn, and the row's version (ETag)."""

    release_id: str
    since: datetime
    etag: str | None  # the SDK types it optional; the service always sends one


class DeployTurns(SideTable):
    """Reads and takes deploy turns next to a ledger."""

    name = "Turns"

    def holder(self, service: str, environment: str) -> Holder | None:
        def get(table: TableClient) -> Holder | None:
            try:
                entity = table.get_entity(_key(service), _key(environment))
            except ResourceNotFoundError as error:
                if getattr(error, "error_code", None) == "TableNotFound":
                    raise
                return None
            return Holder(entity["Holder"], utc(entity["Since"]), entity.metadata["etag"])

        return self._call(f"read the deploy turn of {service}/{environment}", get)

    def take(self, service: str, environment: str, release_id: str, at: datetime,
             replacing: Holder | None) -> bool:
        """Hold the turn: insert it when free, else replace `replacing` unless it changed."""
        entity = {"PartitionKey": _key(service), "RowKey": _key(environment),
                  "Holder": release_id, "Since": at}

        def write(table: TableClient) -> bool:
            try:
                if replacing is None:
                    table.create_entity(entity)
                else:
                    table.update_entity(entity, mode=UpdateMode.REPLACE, etag=replacing.etag,
                                        match_condition=MatchConditions.IfNotModified)
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as lost:
                if getattr(lost, "error_code", None) == "TableNotFound":
                    raise
                return False
            return True

        return self._call(f"take the deploy turn of {service}/{environment}", write)


@dataclass(frozen=True)
class Waiter:
    """A release or operation waiting for a turn, the event that wakes it, the row's ETag."""

    release_id: str
    event: str
    since: datetime
    etag: str | None  # the SDK types it optional; the service always sends one


class TurnWaiters(SideTable):
    """Who waits for each environment's turn: one row per waiter, upserted by it."""

    name = "TurnWaiters"

    def register(self, service: str, environment: str, waiter: str, event: str,
                 at: datetime) -> None:
        """Wait on `event` (replacing the waiter's earlier row there, if any)."""
        entity = {"PartitionKey": _environment_key(service, environment),
                  "RowKey": _key(waiter), "Waiter": waiter, "Event": event, "Since": at}
        self._call(f"register {waiter} as waiting for the turn of {service}/{environment}",
                   lambda table: table.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def waiting(self, service: str, environment: str) -> list[Waiter]:
        """Everyone registered as waiting for the turn, oldest first."""
        def query(table: TableClient) -> list[Waiter]:
            rows = table.query_entities("PartitionKey eq @key", parameters={
                "key": _environment_key(service, environment)})
            return sorted((Waiter(row["Waiter"], row["Event"], utc(row["Since"]),
                                  row.metadata["etag"]) for row in rows),
                          key=lambda waiter: waiter.since)

        return self._call(f"list who waits for the turn of {service}/{environment}", query)

    def forget(self, service: str, environment: str, waiter: str,
               etag: str | None = None) -> None:
        """Remove the waiter's row if there; with `etag`, only as read (a waiter that
        registered again since stays)."""
        def delete(table: TableClient) -> None:
            if_unchanged = MatchConditions.IfNotModified if etag else None
            try:  # a row already gone is no error (the SDK ignores 404 here)
                table.delete_entity(_environment_key(service, environment), _key(waiter),
                                    etag=etag or None, match_condition=if_unchanged)
            except ResourceModifiedError:
                pass

        self._call(f"forget {waiter} waiting for the turn of {service}/{environment}", delete)


def _key(value: str) -> str:
    return table_key(value, "deploy turn key")


def _environment_key(service: str, environment: str) -> str:
    """`<service>|<environment>`, each part escaped so that no `|` inside can shift it."""
    return "|".join(_key(part).replace("|", "%7C") for part in (service, environment))
