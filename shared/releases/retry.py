"""Running a failed release again: whether it may, and the input of the new run.

A retry runs the same release (same id, the same image by digest, who pushed it) from its
first environment, under the policy as it is now and with the checks a new release runs,
for failures outside the image: a setting fixed, a cluster back. Only a release that ended
`Failed` may, and not once a person rolled it back or a newer release of the service came.
Pure: the operations desk (desk.py) reads the ledger, Durable and the policy and starts the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from shared.ingest.decisions import supersedes
from shared.ledger.records import ReleaseRecord
from shared.releases.operations import operation_kind
from shared.releases.plan import PREFLIGHT

RETRYABLE = "Failed"
ACTIVE_RUNTIMES = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})
ROLLED_BACK_BY = "rolled back by "
"""How a rollback operation marks the stage of the release it took out (see
`orchestrations/operations.py`): a person did it."""


def retry_refusal(release: ReleaseRecord, runtime: str | None, outcome: str | None,
                  others: Iterable[ReleaseRecord],
                  version_key: Callable[[str], Any]) -> str | None:
    """Why `release` may not run again (one line, for a 409), or None when it may.

    `runtime` and `outcome` are its Durable runtime status and output outcome (None once
    purged); `others` the service's releases (operations' rows are skipped)."""
    rid = release.release_id
    if runtime in ACTIVE_RUNTIMES:
        return (f"{rid} is running (Durable status {runtime}); it can be retried once it has"
                " ended Failed")
    ended = ended_as(release.state, runtime, outcome)
    if ended == "Completed":
        return f"{rid} completed; there is nothing to retry"
    if ended != RETRYABLE:
        why = f" ({release.reason})" if release.reason else ""
        return f"{rid} ended {ended}{why}; only a Failed release can be retried"
    for environment, stage in release.stages.items():
        if stage.state == "RolledBack" and (stage.detail or "").startswith(ROLLED_BACK_BY):
            return (f"{rid} was {stage.detail} in {environment}; a release a person rolled "
                    "back is not run again")
    newer = newer_release(release, others, version_key)
    if newer is not None:
        return (f"{rid} is superseded by {newer.release_id} ({newer.version}), a newer "
                f"release of {release.service}")
    return None


def ended_as(state: str, runtime: str | None, outcome: str | None) -> str:
    """How the release ended: its outcome, `Failed` when its orchestration failed (crashed),
    `Terminated` when someone stopped it; the ledger's state when Durable forgot it."""
    if runtime == "Failed":
        return RETRYABLE
    if runtime == "Terminated":
        return "Terminated"
    if runtime == "Completed" and outcome:
        return outcome
    return state


def newer_release(release: ReleaseRecord, others: Iterable[ReleaseRecord],
                  version_key: Callable[[str], Any]) -> ReleaseRecord | None:
    """The newest release of the service created after `release` that supersedes it (a
    higher version, the same tag as another image, or no comparable versions); created at
    the same moment, a higher version."""
    def later(other: ReleaseRecord) -> bool:
        if other.created_at != release.created_at:
            return other.created_at > release.created_at
        mine, theirs = version_key(release.version), version_key(other.version)
        return mine is not None and theirs is not None and theirs > mine

    newer = [other for other in others
             if other.release_id != release.release_id and other.service == release.service
             and operation_kind(other.release_id) == "release" and later(other)
             and supersedes(other.version, release.version, version_key)]
    return max(newer, key=lambda other: other.created_at, default=None)


def policy_refusal(service: Any, image: Mapping[str, Any]) -> str | None:
    """Why today's policy of the service cannot take this image again, or None."""
    if image.get("repository") != service.repository:
        return (f"the policy now takes {service.name} from repository {service.repository},"
                f" not {image.get('repository')}; push the image there instead")
    accepted, why = service.accepts_tag(image.get("tag") or "")
    if not accepted:
        return f"the policy no longer releases {image.get('tag')}: {why}"
    return None


def retry_input(previous: Mapping[str, Any], snapshot: dict[str, Any], *, by: str,
                reason: str, at: datetime, after: Mapping[str, Any]) -> dict[str, Any]:
    """The new run's input: the previous run's image and trigger, today's policy snapshot,
    the checks of a new release, and every retry so far with this one (number, who, when,
    why, and how the run before it ended: `after`)."""
    retries = [dict(r) for r in previous.get("retries") or () if isinstance(r, Mapping)]
    retries.append({"number": len(retries) + 1, "by": by, "at": at.isoformat(),
                    "reason": reason or None,
                    "after": {key: after.get(key) for key in ("outcome", "environment",
                                                              "reason")}})
    return {**previous, "policy": snapshot, "preflight": list(PREFLIGHT), "retries": retries}
