"""The approval book: every use of an approval link, so a link counts once and says by whom.

One table `<prefix>Approvals` beside the ledger's (same account, same prefix). A row per
(release, environment, use key), where the use key joins the link's nonce and the approver:
a link that names its approver is used once; a link for signed-in people (App Service
Authentication) once per person. Rows are inserted, never replaced: the insert's conflict
is the answer "already used". Does not decide whether a use counts: see activities/approvals.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from .errors import LedgerError
from .records import table_key, utc
from .side_tables import SideTable
from .store import Ledger


def use_key(nonce: str, identity: str) -> str:
    """The key of one person's use of one link (identity case-folded)."""
    return f"{nonce}:{identity.strip().casefold()}"


@dataclass(frozen=True)
class ApprovalUse:
    """One decision taken with a link: counted, or refused with the reason."""

    use_key: str
    event_id: str
    decision: str
    by: str
    at: datetime
    comment: str | None = None
    counted: bool = False
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"useKey": self.use_key, "eventId": self.event_id, "decision": self.decision,
                "by": self.by, "at": self.at.isoformat(), "comment": self.comment,
                "counted": self.counted, "reason": self.reason}

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> ApprovalUse:
        return cls(use_key=entity["UseKey"], event_id=entity["EventId"],
                   decision=entity["Decision"], by=entity["By"], at=utc(entity["At"]),
                   comment=entity.get("Comment"), counted=bool(entity.get("Counted")),
                   reason=entity.get("Reason"))


class ApprovalBook(SideTable):
    """Reads and inserts approval uses next to a ledger."""

    name = "Approvals"

    @classmethod
    def from_app_settings(cls) -> ApprovalBook:
        return cls.beside(Ledger.from_app_settings())

    def find(self, release_id: str, environment: str, key: str) -> ApprovalUse | None:
        """The use of this key at this gate, or None."""
        def get(table: TableClient) -> ApprovalUse | None:
            try:
                entity = table.get_entity(_partition(release_id), _row(environment, key))
            except ResourceNotFoundError as error:
                if getattr(error, "error_code", None) == "TableNotFound":
                    raise
                return None
            return ApprovalUse.from_entity(dict(entity))

        return self._call(f"find approval use at {release_id}/{environment}", get)

    def uses(self, release_id: str, environment: str) -> list[ApprovalUse]:
        """Every use at this gate, oldest first."""
        def query(table: TableClient) -> list[ApprovalUse]:
            rows = table.query_entities("PartitionKey eq @p and Environment eq @e",
                                        parameters={"p": _partition(release_id),
                                                    "e": environment})
            return sorted((ApprovalUse.from_entity(dict(row)) for row in rows),
                          key=lambda use: use.at)

        return self._call(f"list approval uses at {release_id}/{environment}", query)

    def insert(self, release_id: str, environment: str, use: ApprovalUse) -> ApprovalUse:
        """Store `use` unless its key was used before; the stored use either way."""
        entity = {"PartitionKey": _partition(release_id), "RowKey": _row(environment, use.use_key),
                  "Environment": environment, "UseKey": use.use_key, "EventId": use.event_id,
                  "Decision": use.decision, "By": use.by, "At": use.at,
                  "Comment": use.comment, "Counted": use.counted, "Reason": use.reason}

        def create(table: TableClient) -> bool:
            try:
                table.create_entity({k: v for k, v in entity.items() if v is not None})
            except ResourceExistsError:
                return False
            return True

        if self._call(f"record approval use at {release_id}/{environment}", create):
            return use
        existing = self.find(release_id, environment, use.use_key)
        if existing is None:  # deleted in between: nothing sensible to answer but a retry
            raise LedgerError(f"ledger: approval use at {release_id}/{environment} vanished",
                              operation="record approval use", table=self.table)
        return existing


def _partition(release_id: str) -> str:
    return table_key(release_id, "release id")


def _row(environment: str, key: str) -> str:
    return table_key(f"{environment}|{key}", "approval use")
