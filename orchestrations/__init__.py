"""Deterministic orchestrators only: no I/O, no clock, no randomness.

`HTTP_STARTABLE` names the orchestrations that `POST /api/orchestrators/{name}`
may start; anything else is started by its own trigger.
"""

HTTP_STARTABLE: frozenset[str] = frozenset({"hello_sequence"})
