"""Whether a rollback, redeploy or retry may start: the rules, each refusal a one-line reason.

Pure: the operations desk (desk.py) reads the ledger, Durable and the policy and asks these.
A `Refusal` says what kind of no it is (no such thing, a bad request, not now); the caller
turns that into its answer. Does not build the operation's input (operations.py, retry.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from shared.ledger.records import Deployment, ReleaseRecord
from shared.releases.operations import Deployed, operation_kind, operation_number
from shared.releases.plan import ReleasePlan, Stage
from shared.releases.retry import ACTIVE_RUNTIMES, ended_as, policy_refusal, retry_refusal
from shared.text import one_line

NOT_FOUND = "not-found"
INVALID = "invalid"
CONFLICT = "conflict"


class Refusal(Exception):
    """An operation that may not start, and why (one line); nothing was changed."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def check_names_a_release(release_id: str) -> None:
    """Operations start from a release: an operation's own id is refused."""
    if operation_kind(release_id) != "release":
        raise Refusal(INVALID, f"{release_id} is an operation, not a release; name the "
                               "release it deployed")


def found(release_id: str, row: ReleaseRecord | None) -> ReleaseRecord:
    """The ledger's row of the release; Refusal(not-found) when it has none."""
    if row is None:
        raise Refusal(NOT_FOUND, f"no release {release_id!r}")
    return row


def stage_of(plan: ReleasePlan, environment: str) -> Stage:
    """The plan's stage for `environment`; Refusal(invalid) naming the ones it has."""
    for stage in plan.stages:
        if stage.name == environment:
            return stage
    names = ", ".join(stage.name for stage in plan.stages)
    raise Refusal(INVALID, f"{plan.release_id} has no environment {one_line(environment, 80)!r} "
                           f"(its environments: {names})")


def live_plan(release: ReleaseRecord, spec: Mapping[str, Any]) -> ReleasePlan:
    """The release's plan under the live policy's service `spec` (its snapshot was purged)."""
    return ReleasePlan(release_id=release.release_id, service=release.service,
                       version=release.version, digest=release.digest,
                       source_registry=spec["registry"], source_repository=spec["repository"],
                       stages=tuple(Stage.from_dict(e) for e in spec["environments"]))


def snapshot_image(snapshot: Mapping[str, Any] | None, plan: ReleasePlan, stage: Stage,
                   digest: str) -> str:
    """A release's image in the stage's environment as its own snapshot placed it; without
    one (purged), `digest` placed by `plan`."""
    if snapshot is not None:
        own = ReleasePlan.from_input(dict(snapshot))
        for own_stage in own.stages:
            if own_stage.name == stage.name:
                return own.image_in(own_stage)
    return replace(plan, digest=digest).image_in(stage)


def check_runs_there(release: ReleaseRecord, environment: str,
                     current: Deployment | None) -> Deployment:
    """What runs in `environment`, when it is `release` (a rollback starts from there)."""
    if current is None or current.release_id != release.release_id:
        now = f"{current.release_id} runs there" if current else "nothing is recorded there"
        raise Refusal(CONFLICT, f"{release.release_id} is not what runs in {environment} "
                                f"({now}); roll back the release that runs there")
    return current


def check_rollback_target(release: ReleaseRecord, environment: str,
                          target: ReleaseRecord | None) -> ReleaseRecord:
    """The previous good release to roll back to; Refusal(conflict) when there is none."""
    if target is None:
        raise Refusal(CONFLICT, f"no earlier good release of {release.service} in "
                                f"{environment} to roll back to (none other than "
                                f"{release.release_id} is recorded there as deployed and "
                                "verified)")
    return target


def check_was_deployed(release: ReleaseRecord, environment: str, deployed: bool) -> None:
    """A redeploy puts back only what ran in the environment (`deployed`: `was_deployed`)."""
    if not deployed:
        stage_state = release.stages.get(environment)
        seen = f"its {environment} stage is {stage_state.state}" if stage_state \
            else f"it never reached {environment}"
        raise Refusal(CONFLICT, f"{release.release_id} was never deployed to {environment} "
                                f"({seen}); a redeploy puts back only what ran there and "
                                "skips no gate")


def replaced(current: Deployment | None, rows: Iterable[ReleaseRecord]) -> Deployed | None:
    """What a redeploy replaces: what runs there now (its version from the rows), if any."""
    if current is None:
        return None
    versions = {row.release_id: row.version for row in rows}
    return Deployed(current.release_id, versions.get(current.release_id, ""), current.digest,
                    current.image)


def check_no_operation_running(instances: Iterable[tuple[str, str | None]], service: str,
                               environment: str) -> None:
    """Refusal(conflict) when one of the (instance id, runtime status) pairs is a rollback or
    redeploy of this environment that is still active (sub-orchestrations do not count)."""
    for instance_id, runtime in instances:
        if runtime in ACTIVE_RUNTIMES \
                and operation_number(instance_id, service, environment) is not None:
            raise Refusal(CONFLICT, f"operation {instance_id} is still running in "
                                    f"{environment}; wait for it to finish")


def check_not_deploying(release_id: str, environment: str, runtime: str | None) -> None:
    """Refusal(conflict) while a release whose stage there is `Deploying` is still active."""
    if runtime in ACTIVE_RUNTIMES:
        raise Refusal(CONFLICT, f"{release_id} is deploying to {environment} right now; "
                                "wait for it to finish")


def check_retry(release: ReleaseRecord, runtime: str | None, outcome: str | None,
                previous: Any, others: Iterable[ReleaseRecord], service: Any) -> None:
    """Whether a failed release may run again (shared/releases/retry.py), with its previous
    input still there and its service (taking this image) still in the policy."""
    version_key = service.version_key if service else lambda _tag: None
    refusal = retry_refusal(release, runtime, outcome, others, version_key)
    if refusal is None and not (isinstance(previous, dict)
                                and isinstance(previous.get("image"), dict)):
        refusal = (f"{release.release_id} has no orchestration input any more (its history "
                   "was purged), so who pushed its image is unknown; it is not run again")
    if refusal is None and service is None:
        refusal = f"the release policy has no service {release.service} any more"
    if refusal is None:
        refusal = policy_refusal(service, previous["image"])
    if refusal is not None:
        raise Refusal(CONFLICT, refusal)


def how_it_ended(release: ReleaseRecord, runtime: str | None, output: Any) -> dict[str, Any]:
    """How the run before a retry ended: its output, or what the ledger and Durable say."""
    outcome = output.get("outcome") if isinstance(output, dict) else None
    if isinstance(output, dict) and outcome:
        return output
    return {"outcome": ended_as(release.state, runtime, outcome),
            "environment": release.environment, "reason": release.reason}
