"""The plain-JSON requests of the deployment activities, parsed and checked.

Every request names the environment's cluster connection, its secrets source
(a spec, never a value) and the deploy target, whose kind (shared/cluster/targets.py)
parses the rest of it. Bad input raises InvalidTarget naming the field, before any
cluster is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.secrets.sources import parse_spec

from .errors import InvalidTarget


@dataclass(frozen=True)
class ClusterRequest:
    """Where to act: the target (as its kind will read it), how to connect, and where the
    secrets are."""

    target: dict[str, Any]
    connection: dict[str, Any]
    secrets: dict[str, Any]
    body: dict[str, Any]

    @classmethod
    def from_dict(cls, data: Any) -> ClusterRequest:
        if not isinstance(data, dict):
            raise InvalidTarget("request must be a JSON object")
        target = data.get("target")
        if not isinstance(target, dict):
            raise InvalidTarget("target must be a JSON object")
        if not isinstance(target.get("cluster"), str) or not target["cluster"]:
            raise InvalidTarget("target needs cluster")
        connection = data.get("connection")
        if not isinstance(connection, dict) or connection.get("name") != target.get("cluster"):
            raise InvalidTarget("connection must be an object whose name is target.cluster")
        secrets = data.get("secrets")
        parse_spec(secrets)
        if not isinstance(secrets, dict):  # parse_spec takes any Mapping; JSON gives a dict
            raise InvalidTarget("secrets must be a JSON object")
        return cls(target, connection, secrets, data)

    def text(self, field: str) -> str:
        value = self.body.get(field)
        if not isinstance(value, str) or not value:
            raise InvalidTarget(f"{field} must be a non-empty string")
        return value

    def deadline(self) -> float:
        """`deadline` (ISO 8601 with a zone) as epoch seconds."""
        value = self.text("deadline")
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidTarget(f"deadline {value!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise InvalidTarget("deadline needs a time zone (e.g. a trailing Z)")
        return moment.timestamp()

    def seconds(self, field: str, default: float) -> float:
        value = self.body.get(field, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidTarget(f"{field} must be a non-negative number of seconds")
        return float(value)
