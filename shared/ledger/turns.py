"""Deploy turns: which release holds each service's environment, taken atomically.

One row per service and environment in `<prefix>Turns` naming the holding release.
Taking a free turn is an insert; taking over from a holder that moved on is a replace
conditional on the row's ETag, so of two releases taking the same turn at once exactly
one succeeds. Whether a holder still deploys is the caller's question: see
shared/releases/turns.py.
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
    etag: str


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


def _key(value: str) -> str:
    return table_key(value, "deploy turn key")
