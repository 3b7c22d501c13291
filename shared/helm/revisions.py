"""What Helm recorded about a release, read from the SDK's answers: revisions, their
status and our labels, and the Deployments a revision's manifest holds. Pure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

RELEASE_ID_LABEL = "release-workflow.io/release-id"
"""Helm release label (a Secret label of the revision): the release that made the revision."""
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
PENDING = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
GOOD = frozenset({"deployed", "superseded"})  # what ran, as opposed to failed or pending


@dataclass(frozen=True)
class Revision:
    """One revision of a Helm release."""

    release: str
    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str | None = None
    release_id: str | None = None  # our label; None when a person or another tool made it
    description: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.status in PENDING

    @classmethod
    def from_sdk(cls, data: Mapping[str, Any], description: str | None = None) -> Revision:
        """A revision from the SDK's release summary (`status`, `history` entries)."""
        labels = {str(k): str(v) for k, v in (data.get("labels") or {}).items()}
        return cls(release=str(data.get("name") or ""), revision=int(data.get("revision") or 0),
                   status=str(data.get("status") or "unknown"),
                   chart=str(data.get("chart_name") or ""),
                   chart_version=str(data.get("chart_version") or ""),
                   app_version=data.get("app_version") or None,
                   release_id=labels.get(RELEASE_ID_LABEL), description=description,
                   labels=labels)

    def to_dict(self) -> dict[str, Any]:
        return {"release": self.release, "revision": self.revision, "status": self.status,
                "chart": self.chart, "chartVersion": self.chart_version,
                "releaseId": self.release_id, "description": self.description}


def release_label(release_id: str) -> str:
    """The label value that names `release_id` on a revision: the id itself when Kubernetes
    takes it as a label value, else `r-` and a hash of it (63 characters at most)."""
    if _LABEL_VALUE.fullmatch(release_id):
        return release_id
    return "r-" + hashlib.sha256(release_id.encode()).hexdigest()[:40]


def latest(history: Iterable[Revision]) -> Revision | None:
    """The newest revision, whatever its status."""
    return max(history, key=lambda r: r.revision, default=None)


def deployed(history: Iterable[Revision]) -> Revision | None:
    """The revision Helm counts as running (status `deployed`), newest first."""
    return latest(r for r in history if r.status == "deployed")


def made_by(history: Sequence[Revision], release_id: str) -> Revision | None:
    """The newest revision our release `release_id` made that ran (deployed or superseded)."""
    label = release_label(release_id)
    return latest(r for r in history if r.release_id == label and r.status in GOOD)


def deployments_in(manifest: str) -> list[str]:
    """The names of the Deployments a rendered manifest holds, in its order."""
    names = []
    for document in yaml.safe_load_all(manifest or ""):
        if isinstance(document, dict) and document.get("kind") == "Deployment" \
                and str(document.get("apiVersion", "")).startswith("apps/"):
            name = (document.get("metadata") or {}).get("name")
            if isinstance(name, str) and name:
                names.append(name)
    return names
