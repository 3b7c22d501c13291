"""The ledger's one error type, with messages that never carry a connection string or key."""

from __future__ import annotations


class LedgerError(Exception):
    """A ledger operation failed; `str()` names the operation, the table and why."""

    def __init__(self, message: str, *, operation: str = "", table: str = "") -> None:
        self.operation = operation
        self.table = table
        super().__init__(message)
