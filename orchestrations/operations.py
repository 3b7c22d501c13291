"""Manual operations on one environment: roll back to the previous good release, redeploy.

Each operation is its own orchestration with the release's audit trail (`Journal`: custom
status and a ledger row under the operation's id, e.g. `rollback:delivery:prod:3`). Its
input is built by `triggers/releases.py` from the ledger and the release's policy snapshot:
the environment's spec, the image to deploy by digest, who asked and why.

- `rollback_environment` deploys the previous good release's image with a change-cause
  naming the operator and the reason, watches the rollout, runs the checks, and records
  that release as current and good; on failure it restores what ran before.
- `redeploy_environment` runs a past release through `deploy_environment` again (snapshot,
  deploy, watch, verify, automatic restore).

Also the pure rules the trigger decides with (operation ids, what counts as good).
Deterministic: no I/O, no clock outside the context. Does not decide *whether* an
operation may start: the trigger answers 409 before starting it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df

from orchestrations.release import RETRY, Journal, restore, watch_rollout
from shared.ledger.records import ReleaseRecord
from shared.releases.plan import ReleasePlan, Stage, cluster_request

bp = df.Blueprint()
ORCHESTRATORS = {"rollback": "rollback_environment", "redeploy": "redeploy_environment"}
KINDS = tuple(ORCHESTRATORS)
# Stage states in which a release's image was deployed to that environment (and promoted
# there first, where the environment promotes): what a redeploy may put back.
DEPLOYED_STAGE_STATES = ("Healthy", "RolledBack")
GOOD_STAGE_STATE = "Healthy"


# The pure rules --------------------------------------------------------------------------

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


def one_line(text: str, limit: int = 500) -> str:
    return " ".join(str(text).split())[:limit]


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
                "stage": self.stage.spec, "policy": self.policy}

    @classmethod
    def from_input(cls, data: dict[str, Any]) -> Operation:
        release = Deployed.from_dict(data["release"])
        assert release is not None
        return cls(operation_id=data["operationId"], kind=data["kind"],
                   service=data["service"], stage=Stage(data["stage"]["name"], data["stage"]),
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
        return one_line(f"{what} by {self.by}" + (f": {self.reason}" if self.reason else ""))

    def change_cause(self) -> str:
        """`kubernetes.io/change-cause` of a rollback: the operator's words, and the id."""
        before = self.replaces.version if self.replaces else "?"
        return one_line(f"rollback by {self.by} from {before} to {self.release.version} "
                        f"({self.operation_id}): {self.reason}")

    def plan(self) -> ReleasePlan:
        """A one-stage plan under the operation's id, for the `Journal`."""
        return ReleasePlan(release_id=self.operation_id, service=self.service,
                           version=self.release.version, digest=self.release.digest,
                           source_registry={}, source_repository="", stages=(self.stage,))

    def deploy_request(self) -> dict[str, Any]:
        """`deploy_environment`'s input: the past release's image in this environment."""
        return {"releaseId": self.release.release_id, "service": self.service,
                "version": self.release.version, "digest": self.release.digest,
                "stage": self.stage.spec, "image": self.release.image}

    def cluster(self, **fields: Any) -> dict[str, Any]:
        return cluster_request(self.stage, **fields)


def start_journal(context: df.DurableOrchestrationContext, op: Operation) -> Journal:
    journal = Journal(context, op.plan())
    journal.status["operation"] = op.summary()
    journal.step(op.stage, op.kind)
    return journal


def mark_stage(context: df.DurableOrchestrationContext, op: Operation, release: Deployed,
               state: str, detail: str) -> Any:
    """Set the release's stage in this environment (its row's other fields stay)."""
    return context.call_activity_with_retry("mark_release_stage", RETRY, {
        "releaseId": release.release_id, "service": op.service,
        "environment": op.environment, "state": state, "detail": one_line(detail),
        "at": context.current_utc_datetime.isoformat()})


# The orchestrations ----------------------------------------------------------------------

@bp.orchestration_trigger(context_name="context")
def rollback_environment(context: df.DurableOrchestrationContext):
    """Put the previous good release back into one environment, by digest, and verify it."""
    op = Operation.from_input(context.get_input())
    journal = start_journal(context, op)
    stage = op.stage
    yield journal.record("Running", stage, op.describe(), stage_state="Deploying")

    try:
        snapshot = yield context.call_activity_with_retry("snapshot_deployment", RETRY,
                                                          op.cluster())
    except Exception as error:
        return (yield from journal.finish("Failed", stage,
                                          f"nothing changed: {one_line(str(error))}"))
    failure = yield from deploy_and_verify(context, op, journal)
    if failure is not None and stage.rollback.get("onFailure") == "none":
        return (yield from journal.finish(
            "Failed", stage, f"{failure}; left in place (rollback.onFailure is none)"))
    if failure is not None:
        journal.step(stage, "restore")
        restored = yield from restore(context, op.cluster, snapshot, failure,
                                      context.current_utc_datetime + stage.rollout_timeout)
        outcome = "RolledBack" if restored is None else "Failed"
        return (yield from journal.finish(
            outcome, stage, failure if restored is None else f"{failure}; {restored}"))

    yield context.call_activity("record_deployment", {
        "service": op.service, "environment": op.environment,
        "releaseId": op.release.release_id, "digest": op.release.digest,
        "image": op.release.image, "good": True,
        "at": context.current_utc_datetime.isoformat()})
    if op.replaces is not None and op.replaces.release_id != op.release.release_id:
        yield mark_stage(context, op, op.replaces, "RolledBack",
                         f"rolled back by {op.by} ({op.operation_id}): {op.reason}")
    yield mark_stage(context, op, op.release, "Healthy",
                     f"restored by {op.by} ({op.operation_id})")
    return (yield from journal.finish("Completed", stage, op.describe()))


def deploy_and_verify(context: df.DurableOrchestrationContext, op: Operation,
                      journal: Journal) -> Generator[Any, Any, str | None]:
    """Deploy the operation's image, watch the rollout, run the checks: None or the failure."""
    stage = op.stage
    deadline = context.current_utc_datetime + stage.rollout_timeout
    try:
        journal.step(stage, "deploy")
        yield context.call_activity_with_retry("deploy_image", RETRY, op.cluster(
            image=op.release.image, releaseId=op.release.release_id,
            changeCause=op.change_cause()))
        journal.step(stage, "rollout")
        rollout = yield from watch_rollout(context, op.cluster, deadline)
        if rollout["state"] != "complete":
            return f"rollout {rollout['state']}: {rollout.get('message') or rollout['reason']}"
        if stage.spec.get("checks"):
            journal.step(stage, "verify")
            verdict = yield context.call_activity("verify_release", {
                "checks": stage.spec["checks"], "secrets": stage.spec["secrets"]})
            if not verdict["passed"]:
                return "verification failed: " + "; ".join(
                    f"{v['check']}: {v['reason']}" for v in verdict["verdicts"] if not v["passed"])
    except Exception as error:
        return one_line(str(error))
    return None


@bp.orchestration_trigger(context_name="context")
def redeploy_environment(context: df.DurableOrchestrationContext):
    """Deploy a past release's image into one environment again, with the usual safety net."""
    op = Operation.from_input(context.get_input())
    journal = start_journal(context, op)
    stage = op.stage
    yield journal.record("Running", stage, op.describe(), stage_state="Deploying")
    journal.step(stage, "deploy")
    try:
        result = yield context.call_sub_orchestrator(
            "deploy_environment", op.deploy_request(), f"{op.operation_id}:deploy")
    except Exception as error:
        return (yield from journal.finish("Failed", stage, one_line(str(error))))
    if result["healthy"]:
        yield mark_stage(context, op, op.release, "Healthy",
                         f"redeployed by {op.by} ({op.operation_id})")
        return (yield from journal.finish("Completed", stage, op.describe()))
    outcome = "RolledBack" if result["rolledBack"] else "Failed"
    yield mark_stage(context, op, op.release, outcome,
                     f"redeploy by {op.by} ({op.operation_id}) failed: {result['reason']}")
    return (yield from journal.finish(outcome, stage, one_line(result["reason"])))
