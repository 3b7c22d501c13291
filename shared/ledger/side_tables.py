"""A table beside the ledger's own (same account and prefix), created on first use.

The base of the approval book and the deploy turns: one place that turns Azure errors
into `LedgerError`s naming the operation and table, and re-creates a table deleted behind
our back. Does not know any row shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient

from .errors import LedgerError
from .store import Ledger

T = TypeVar("T")
_ready: set[tuple[str, str]] = set()


class SideTable:
    """`<prefix><name>` on the ledger's account."""

    name = ""

    def __init__(self, client: TableServiceClient, prefix: str, endpoint: str) -> None:
        self.client = client
        self.table = f"{prefix}{self.name}"
        self.endpoint = endpoint

    @classmethod
    def beside(cls: type[S], ledger: Ledger) -> S:
        return cls(ledger.client, ledger.prefix, ledger.endpoint)

    def _call(self, operation: str, action: Callable[[TableClient], T]) -> T:
        for attempt in (1, 2):
            table = self.client.get_table_client(self.table)
            try:
                if (self.endpoint, self.table) not in _ready:
                    try:
                        table.create_table()
                    except ResourceExistsError:
                        pass
                    _ready.add((self.endpoint, self.table))
                return action(table)
            except AzureError as error:
                if attempt == 1 and getattr(error, "error_code", None) == "TableNotFound":
                    _ready.discard((self.endpoint, self.table))
                    continue
                first = (str(getattr(error, "message", None) or error).splitlines() or [""])[0]
                raise LedgerError(f"ledger: {operation} on table {self.table} at"
                                  f" {self.endpoint} failed: {type(error).__name__}:"
                                  f" {first[:200]}", operation=operation,
                                  table=self.table) from error
        raise AssertionError("unreachable")


S = TypeVar("S", bound=SideTable)
