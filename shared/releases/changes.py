"""What a release changes in one environment: the source revision of the proposed image and
of the one running there, the compare link between them, and the versions in between.

`what_changes` reads the registry (through `read_provenance`) and the ledger, and never
raises: whatever cannot be read is said in the answer. `versions_between` and the
`ReleaseChanges` round trip are pure. Computed by `request_approval` when a gate opens and
kept in the ledger's changes book (shared/ledger/changes.py) for the pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.ledger.records import EnvironmentState, ReleaseRecord
from shared.registry.provenance import Blobs, Provenance, read_provenance
from shared.releases.source_links import compare_link
from shared.text import one_line

log = logging.getLogger(__name__)
BETWEEN_SHOWN = 20     # versions in between listed; more are counted


class Releases(Protocol):
    """What `what_changes` reads of the ledger (`shared.ledger.Ledger`)."""

    def environment_state(self, service: str, environment: str) -> EnvironmentState: ...

    def get_release(self, release_id: str, *,
                    service: str | None = None) -> ReleaseRecord | None: ...


Since = Callable[[str, datetime], Sequence[ReleaseRecord]]
"""A service's releases created since a moment (`shared.ledger.changes.releases_since`)."""


@dataclass(frozen=True)
class Between:
    """A version of the service released or skipped between the running and the proposed."""

    release_id: str
    version: str
    state: str

    def to_dict(self) -> dict[str, str]:
        return {"releaseId": self.release_id, "version": self.version, "state": self.state}


@dataclass(frozen=True)
class ReleaseChanges:
    """What the proposed image changes against what runs in `environment`."""

    environment: str
    proposed: Provenance
    running: Provenance | None = None
    """None: nothing recorded as running there."""
    running_release: str | None = None
    running_version: str | None = None
    compare_url: str | None = None
    no_compare: str | None = None
    """Why there is no compare link (None when there is one)."""
    between: tuple[Between, ...] = ()
    more_between: int = 0
    between_unknown: str | None = None
    """Why the versions in between are unknown (None when they are known)."""

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "proposed": self.proposed.to_dict(),
                "running": self.running.to_dict() if self.running else None,
                "runningRelease": self.running_release, "runningVersion": self.running_version,
                "compareUrl": self.compare_url, "noCompare": self.no_compare,
                "between": [b.to_dict() for b in self.between],
                "moreBetween": self.more_between, "betweenUnknown": self.between_unknown}

    @classmethod
    def from_dict(cls, data: Any) -> ReleaseChanges | None:
        """What `to_dict` wrote, with the link checked again; None for anything else."""
        if not isinstance(data, Mapping):
            return None
        proposed = Provenance.from_dict(data.get("proposed"))
        if proposed is None or not isinstance(data.get("environment"), str):
            return None
        running = Provenance.from_dict(data.get("running"))
        url, why = link_between(proposed, running) if running else \
            (None, _text(data.get("noCompare"), 300) or None)
        between = tuple(Between(_text(b.get("releaseId")), _text(b.get("version")),
                                _text(b.get("state")))
                        for b in _list(data.get("between")) if isinstance(b, Mapping))
        more = data.get("moreBetween")
        return cls(one_line(data["environment"], 100), proposed, running,
                   _text(data.get("runningRelease")) or None,
                   _text(data.get("runningVersion")) or None,
                   url, why,
                   between[:BETWEEN_SHOWN], more if isinstance(more, int) and more > 0 else 0,
                   _text(data.get("betweenUnknown"), 300) or None)


def what_changes(registry: Blobs, repository: str, ledger: Releases, since: Since, *,
                 service: str, release_id: str, digest: str,
                 environment: str) -> ReleaseChanges:
    """The changes of `release_id` (image `repository@digest`) in `environment`; the
    versions in between are read from the running release's creation on."""
    proposed = read_provenance(registry, repository, digest)
    try:
        current = ledger.environment_state(service, environment).current
    except Exception as error:  # the ledger only hides what runs there
        log.warning("changes of %s in %s: what runs there is unknown: %s", release_id,
                    environment, error)
        return ReleaseChanges(environment, proposed, no_compare="what runs there is unknown",
                              between_unknown=f"the ledger cannot be read: {one_line(error, 200)}")
    if current is None:
        return ReleaseChanges(environment, proposed,
                              no_compare=f"nothing recorded as running in {environment}")
    running = proposed if current.digest == digest else running_provenance(
        registry, repository, current.digest, current.image)
    url, why = link_between(proposed, running)
    unknown: str | None = None
    running_row: ReleaseRecord | None = None
    between: list[Between] = []
    try:
        running_row = ledger.get_release(current.release_id, service=service)
        if running_row is None:
            unknown = f"the running release {current.release_id} is not in the ledger"
        else:
            rows = [running_row, *since(service, running_row.created_at)]
            if all(r.release_id != release_id for r in rows):  # older than the running one
                proposed_row = ledger.get_release(release_id, service=service)
                rows += [proposed_row] if proposed_row else []
            between = versions_between(rows, current.release_id, release_id) or []
    except Exception as error:
        log.warning("changes of %s: the versions in between are unknown: %s", release_id, error)
        unknown = f"the ledger cannot be read: {one_line(error, 200)}"
    return ReleaseChanges(environment, proposed, running, current.release_id,
                          running_row.version if running_row else None, url, why,
                          tuple(between[:BETWEEN_SHOWN]), max(0, len(between) - BETWEEN_SHOWN),
                          unknown)


def running_provenance(registry: Blobs, repository: str, digest: str, image: str
                       ) -> Provenance:
    """The running image's provenance, from the release's repository, else from the one the
    environment pulls it from (`host/prod/delivery@…`, on the same registry): a promoted
    image outlives its source repository's retention."""
    found = read_provenance(registry, repository, digest)
    endpoint = getattr(registry, "endpoint", None)
    host, _, rest = image.partition("/")
    pulled = rest.partition("@")[0]
    if found.problem is None or endpoint is None or host != getattr(endpoint, "host", None) \
            or not pulled or pulled == repository:
        return found
    again = read_provenance(registry, pulled, digest)
    return found if again.problem and not again.revision else again


def link_between(proposed: Provenance, running: Provenance) -> tuple[str | None, str | None]:
    """The compare link from the running image's revision to the proposed one's, or why
    there is none."""
    if running.source and proposed.source and running.source != proposed.source:
        return None, "the two images name different source repositories"
    return compare_link(proposed.source or running.source, running.revision,
                        proposed.revision)


def versions_between(releases: Sequence[ReleaseRecord], running: str, proposed: str
                     ) -> list[Between] | None:
    """The releases created after `running` and before `proposed` (by creation, oldest
    first), whatever became of them; None when `running` is not among `releases`."""
    by_id = {r.release_id: r for r in releases}
    start = by_id.get(running)
    if start is None:
        return None
    end = by_id.get(proposed)
    found = [r for r in releases
             if r.release_id not in (running, proposed)
             and (r.created_at, r.release_id) > (start.created_at, start.release_id)
             and (end is None or (r.created_at, r.release_id) < (end.created_at,
                                                                   end.release_id))]
    found.sort(key=lambda r: (r.created_at, r.release_id))
    return [Between(r.release_id, r.version, r.state) for r in found]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any, limit: int = 128) -> str:
    return one_line(value, limit) if isinstance(value, str) else ""
