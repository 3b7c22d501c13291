"""`PinnedChart`: the chart a release deploys in every environment, by digest (pure, and
free of Helm's SDK, so orchestrators can name it without loading Helm)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.failure_kinds import Permanent


class ChartError(Permanent, ValueError):
    """A chart that cannot be used: not a chart, too large, the wrong version, unreadable."""


@dataclass(frozen=True)
class PinnedChart:
    """The chart a release deploys in every environment: where from, name, version, digest."""

    source: str  # oci://host/repository, or the folder's path inside the app
    name: str
    version: str
    digest: str

    @property
    def reference(self) -> str:
        """`oci://host/repository@sha256:…`, or the folder with its digest, for people."""
        return f"{self.source}@{self.digest}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "version": self.version,
                "digest": self.digest}

    @classmethod
    def from_dict(cls, data: Any) -> PinnedChart:
        if not isinstance(data, dict):
            raise ChartError("a pinned chart must be a JSON object")
        try:
            return cls(*(str(data[key]) for key in ("source", "name", "version", "digest")))
        except KeyError as missing:
            raise ChartError(f"a pinned chart needs {missing}") from None
