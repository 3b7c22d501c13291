"""Deploying one environment, the steps every deploy takes: deploy → watch → verify, restore,
and the ledger's note of what runs there.

Shared by a release's `deploy_environment` and by the operations (rollback, redeploy); the
change cause is the caller's. Generators to `yield from` inside an orchestrator: they add
no call of their own, so each caller schedules exactly what it scheduled before.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from orchestrations.analysing import analyse
from orchestrations.attempts import attempt
from orchestrations.context import OrchestrationContext, Task
from shared.cluster.verification import evidence_from_answer
from shared.releases.failures import said
from shared.releases.plan import Stage
from shared.timefmt import iso_z

# Ledger writes: every failure there is worth another try.
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)
ROLLOUT_CHECK_SECONDS = 20
SETTLE_GRACE = timedelta(minutes=2)  # Helm returns at its timeout: the deadline
ClusterCall = Callable[..., dict[str, Any]]  # the stage's cluster request with more fields
Report = Callable[[str], Task | None]  # hears an early failure; may return a task to yield


@dataclass(frozen=True)
class Verified:
    """How a deploy ended: `failure` says why it is not healthy (None when it is), `evidence`
    what the rollout and the checks showed when it is."""

    failure: str | None
    evidence: str | None = None
    revision: int | None = None  # the Helm revision the change made (Helm targets only)
    changed: bool = True  # False when the change itself was refused (nothing was changed)
    inconclusive: bool = False  # the analysis could neither pass nor fail: a person decides


def deploy_and_verify(context: OrchestrationContext, stage: Stage,
                      cluster: ClusterCall, deadline: datetime, *, image: str, release_id: str,
                      change_cause: str, step: Callable[[str], None] | None = None,
                      report: Report | None = None,
                      variables: Mapping[str, str] | None = None,
                      ) -> Generator[Any, Any, Verified]:
    """Point the stage's target at `image`, watch the rollout until `deadline`, run the
    stage's checks (and `helm test`), then its analysis when the policy has one and the
    caller gives its query `variables`; `step` hears "deploy", "rollout", "verify",
    "analysis" as each begins, `report` a failure seen while the target still settles
    (see `watch_rollout`)."""
    def deploy() -> Generator[Any, Any, Any]:
        return (yield from attempt(context, "deploy_image", cluster(
            image=image, releaseId=release_id, changeCause=change_cause)))

    return (yield from roll_out(context, stage, cluster, deadline, ("deploy", deploy), step,
                                report, variables, release_id))


def put_back_and_verify(context: OrchestrationContext, stage: Stage, cluster: ClusterCall,
                        deadline: datetime, snapshot: dict[str, Any], change_cause: str,
                        step: Callable[[str], None] | None = None,
                        ) -> Generator[Any, Any, Verified]:
    """Put back what `snapshot` recorded (a Helm target: `helm rollback` to its revision) as
    the deploy, then watch and verify as `deploy_and_verify` does; `step` hears "rollback"."""
    def put_back() -> Generator[Any, Any, Any]:
        return (yield from attempt(context, "rollback_deployment", cluster(
            snapshot=snapshot, deadline=deadline.isoformat(),
            maxWaitSeconds=ROLLOUT_CHECK_SECONDS, changeCause=change_cause)))

    return (yield from roll_out(context, stage, cluster, deadline, ("rollback", put_back),
                                step))


def roll_out(context: OrchestrationContext, stage: Stage, cluster: ClusterCall,
             deadline: datetime, change: tuple[str, Callable[[], Generator[Any, Any, Any]]],
             step: Callable[[str], None] | None = None, report: Report | None = None,
             variables: Mapping[str, str] | None = None, release_id: str | None = None,
             ) -> Generator[Any, Any, Verified]:
    """Make the `change` (its step name and its calls), watch the rollout, verify, and
    analyse when the stage has an analysis and `variables` are given (its rounds recorded
    as the evidence of `release_id`)."""
    def begin(name: str) -> None:
        if step is not None:
            step(name)

    revision = None
    try:
        begin(change[0])
        try:
            answer = yield from change[1]()
        except Exception as refused:
            return Verified(said(refused), changed=False)
        if stage.helm is not None and isinstance(answer, dict):
            revision = answer.get("revision")
        begin("rollout")
        rollout = yield from watch_rollout(context, cluster, deadline, report)
        if rollout["state"] != "complete":
            return Verified(f"rollout {rollout['state']}: "
                            f"{rollout.get('message') or rollout['reason']}", revision=revision)
        evidence = "rollout complete: " + (rollout.get("message") or "all replicas ready")
        environment, helm = stage.environment, stage.helm
        if environment.checks or helm is not None and helm.test.enabled:
            begin("verify")
            checks = list(environment.checks)
            # A Helm target verifies through its kind (helm test); the first targets did not.
            request = cluster(checks=checks) if helm is not None else {
                "checks": checks, "secrets": environment.secrets}
            checked = evidence_from_answer(
                (yield context.call_activity("verify_release", request)))
            if not checked.passed:
                return Verified(checked.failure(), revision=revision)
            evidence = checked.summary
        verified_by = evidence if environment.checks or helm is not None and \
            helm.test.enabled else None
        if environment.analysis is not None and variables is not None:
            begin("analysis")
            window = {**variables, "windowStart": iso_z(context.current_utc_datetime)}
            analysed = yield from analyse(context, stage, window, release_id)
            if analysed.failure is not None:
                return Verified(analysed.failure, revision=revision,
                                inconclusive=analysed.inconclusive)
            # Approvers see both: what the checks (helm test) showed, then the analysis.
            evidence = "; ".join(filter(None, (verified_by, analysed.evidence)))
    except Exception as error:
        return Verified(said(error), revision=revision)
    return Verified(None, evidence, revision)


def record_deployment(context: OrchestrationContext, job: dict[str, Any], *,
                      good: bool, revision: int | None = None) -> Any:
    """The ledger's note that the deploy request's image now runs in its environment
    (and, when `good`, is the environment's last good release); a Helm target's chart and
    `revision` with it (keys only for Helm: other requests stay as they were)."""
    request = {
        "service": job["service"], "environment": job["stage"]["name"],
        "releaseId": job["releaseId"], "digest": job["digest"], "image": job["image"],
        "good": good, "at": context.current_utc_datetime.isoformat()}
    chart = job.get("chart")
    if isinstance(chart, dict):
        request["chart"] = {key: chart.get(key) for key in ("name", "version", "digest")}
    if revision is not None:
        request["revision"] = revision
    return context.call_activity_with_retry("record_deployment", RETRY, request)


def watch_rollout(context: OrchestrationContext, cluster: ClusterCall, deadline: datetime,
                  report: Report | None = None) -> Generator[Any, Any, dict[str, Any]]:
    """Ask the cluster until the rollout completes, fails or the deadline passes.

    A failure the target calls unsettled (`"settled": false`: Helm still waits, and must
    return before anything rolls back) is told to `report` at once, then watched until it
    settles, for at most `SETTLE_GRACE` past the deadline."""
    told = False
    while True:
        # Once a failure is told, the target only waits for it to settle (no early answer).
        settling = {"settling": True} if told else {}
        status: dict[str, Any] = yield from attempt(context, "await_rollout", cluster(
            deadline=deadline.isoformat(), maxWaitSeconds=ROLLOUT_CHECK_SECONDS, **settling))
        now = context.current_utc_datetime
        unsettled = status["state"] == "failed" and status.get("settled") is False
        if unsettled and not told and report is not None:
            told = True
            task = report(f"{status.get('reason')}: {status.get('message')}")
            if task is not None:
                yield task
        if status["state"] == "progressing" and now < deadline:
            continue
        if unsettled and now < deadline + SETTLE_GRACE:
            continue
        return status


def restore(context: OrchestrationContext, cluster: ClusterCall,
            snapshot: dict[str, Any], failure: str,
            deadline: datetime) -> Generator[Any, Any, str | None]:
    """Roll back to the snapshot and watch it; None when restored, else what went wrong."""
    try:
        result = yield from attempt(context, "rollback_deployment", cluster(
            snapshot=snapshot, deadline=deadline.isoformat(),
            maxWaitSeconds=ROLLOUT_CHECK_SECONDS,
            changeCause=f"automatic rollback to revision {snapshot['revision']}: {failure}"))
        rollout = result["rollout"]
        if rollout["state"] == "progressing":
            rollout = yield from watch_rollout(context, cluster, deadline)
    except Exception as error:
        return f"ROLLBACK FAILED: {said(error)}"
    if rollout["state"] != "complete":
        return f"ROLLBACK DID NOT COMPLETE: {rollout.get('message') or rollout['reason']}"
    return None
