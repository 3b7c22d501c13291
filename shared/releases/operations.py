"""Manual operations' rules: operation ids, what counts as a good release, the input shape.

Pure: used by `triggers/releases.py` to decide whether an operation may start and by
`orchestrations/operations.py` to run it. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.ledger.records import ReleaseRecord
from shared.releases.failures import REASON_LIMIT
from shared.releases.plan import ReleasePlan, Stage, cluster_request
from shared.text import one_line

ORCHESTRATORS = {"rollback": "rollback_environment", "redeploy": "redeploy_environment"}
KINDS = tuple(ORCHESTRATORS)
# Stage states in which a release's image was deployed to that environment (and promoted
# there first, where the environment promotes): what a redeploy may put back.
DEPLOYED_STAGE_STATES = ("Healthy", "RolledBack")
GOOD_STAGE_STATE = "Healthy"


# --------------------------------------------------------------------------

def operation_id(kind: str, service: str, environment: str, number: int) -> str:
    """The Durable instance id (and ledger row id) of an operation: `kind:service:env:n`."""
    return f"{kind}:{service}:{environment}:{number}"


def operation_prefix(kind: str, service: str, environment: str) -> str:
    return f"{kind}:{service}:{environment}:"


def operation_kind(release_id: str) -> str:
    """`rollback` or `redeploy` for an operation's id, `release` for a release's."""
    kind = release_id.partition(":")[0]
    return kind if kind in KINDS and release_id.count(":") == 3 else "release"


def operation_number(instance_id: str, service: str, environment: str) -> int | None:
    """n of `kind:service:env:n` (of any kind), None for anything else (sub-orchestrations)."""
    for kind in KINDS:
        prefix = operation_prefix(kind, service, environment)
        if instance_id.startswith(prefix) and instance_id[len(prefix):].isdigit():
            return int(instance_id[len(prefix):])
    return None


def next_operation_number(ids: Iterable[str], service: str, environment: str) -> int:
    """One more than the highest n used in this environment by any kind, or 1.

    Rollbacks and redeploys share the sequence; `ids` should hold both the ledger's rows
    (which outlive purged Durable history) and Durable's instances (which exist before
    their first ledger row).
    """
    numbers = [n for i in ids if (n := operation_number(i, service, environment)) is not None]
    return max(numbers, default=0) + 1


def previous_good(releases: Iterable[ReleaseRecord], environment: str,
                  current: ReleaseRecord) -> ReleaseRecord | None:
    """The release to roll `environment` back to from `current`, or None.

    That is the release, other than `current`, whose stage in this environment most
    recently became Healthy (deployed, rolled out and verified there; an operation that
    puts a release back refreshes that time), and no later than `current` did. A release
    rolled back out of the environment, automatically or by an operator, has that stage
    RolledBack and no longer counts. Operations' own rows are not releases.
    """
    def healthy_at(record: ReleaseRecord) -> Any:
        stage = record.stages.get(environment)
        if stage is None or stage.state != GOOD_STAGE_STATE or stage.finished is None:
            return None
        return stage.finished

    cutoff = healthy_at(current)
    candidates = [
        (at, record.created_at, record.release_id, record) for record in releases
        if operation_kind(record.release_id) == "release"
        and record.release_id != current.release_id
        and (at := healthy_at(record)) is not None and (cutoff is None or at <= cutoff)]
    return max(candidates, key=lambda c: c[:3])[3] if candidates else None


def was_deployed(release: ReleaseRecord, environment: str) -> bool:
    """Whether the release's image reached this environment (so a redeploy skips no gate)."""
    stage = release.stages.get(environment)
    return stage is not None and stage.state in DEPLOYED_STAGE_STATES


# The operation ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Deployed:
    """A release's image as deployed to one environment."""

    release_id: str
    version: str
    digest: str
    image: str

    def to_dict(self) -> dict[str, str]:
        return {"releaseId": self.release_id, "version": self.version, "digest": self.digest,
                "image": self.image}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Deployed | None:
        if not data:
            return None
        return cls(data["releaseId"], data.get("version") or "", data["digest"], data["image"])


@dataclass(frozen=True)
class Operation:
    """An operator's request on one environment, as the orchestration input carries it."""

    operation_id: str
    kind: str
    service: str
    stage: Stage
    by: str
    reason: str
    release: Deployed           # what the operation deploys
    replaces: Deployed | None   # what ran there when it was asked for (None: not recorded)
    policy: dict[str, Any]

    @property
    def environment(self) -> str:
        return self.stage.name

    def to_input(self) -> dict[str, Any]:
        return {"operationId": self.operation_id, "kind": self.kind, "service": self.service,
                "environment": self.environment, "by": self.by, "reason": self.reason,
                "release": self.release.to_dict(),
                "replaces": self.replaces.to_dict() if self.replaces else None,
                "stage": self.stage.to_dict(), "policy": self.policy}

    @classmethod
    def from_input(cls, data: dict[str, Any]) -> Operation:
        release = Deployed.from_dict(data["release"])
        assert release is not None
        return cls(operation_id=data["operationId"], kind=data["kind"],
                   service=data["service"], stage=Stage.from_dict(data["stage"]),
                   by=data["by"], reason=data.get("reason") or "", release=release,
                   replaces=Deployed.from_dict(data.get("replaces")),
                   policy=data.get("policy") or {})

    def summary(self) -> dict[str, Any]:
        """Who asked for what: the custom status's `operation` (no secrets, no stage spec)."""
        return {"kind": self.kind, "environment": self.environment, "by": self.by,
                "reason": self.reason, "release": self.release.to_dict(),
                "replaces": self.replaces.to_dict() if self.replaces else None,
                "policy": self.policy}

    def describe(self) -> str:
        """One line for the ledger row: what, where, from what, by whom, why."""
        what = (f"{self.kind} of {self.environment} to {self.release.version} "
                f"({self.release.release_id})")
        if self.replaces and self.replaces.release_id != self.release.release_id:
            what += f" from {self.replaces.version} ({self.replaces.release_id})"
        return one_line(f"{what} by {self.by}" + (f": {self.reason}" if self.reason else ""),
                        REASON_LIMIT)

    def change_cause(self) -> str:
        """`kubernetes.io/change-cause` of a rollback: the operator's words, and the id."""
        before = self.replaces.version if self.replaces else "?"
        return one_line(f"rollback by {self.by} from {before} to {self.release.version} "
                        f"({self.operation_id}): {self.reason}", REASON_LIMIT)

    def plan(self) -> ReleasePlan:
        """A one-stage plan under the operation's id, for the `Journal`."""
        return ReleasePlan(release_id=self.operation_id, service=self.service,
                           version=self.release.version, digest=self.release.digest,
                           source_registry={}, source_repository="", stages=(self.stage,))

    def deploy_request(self) -> dict[str, Any]:
        """`deploy_environment`'s input: the past release's image in this environment."""
        return {"releaseId": self.release.release_id, "service": self.service,
                "version": self.release.version, "digest": self.release.digest,
                "stage": self.stage.to_dict(), "image": self.release.image}

    def cluster(self, **fields: Any) -> dict[str, Any]:
        return cluster_request(self.stage, **fields)


