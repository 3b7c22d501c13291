"""Figures about how releases go, computed from the ledger.

`delivery` holds the rules of the four delivery figures (DORA), pure; `from_ledger` reads
the rows of a window and hands them to those rules. Telemetry of the workflow itself is
not here.
"""
