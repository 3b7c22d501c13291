"""Manual operations on one environment: roll back to the previous good release, redeploy.

Each operation is its own orchestration with the release's audit trail (`Journal`: custom
status and a ledger row under the operation's id, e.g. `rollback:delivery:prod:3`). Its
input is built by `triggers/releases.py` from the ledger and the release's policy snapshot:
the environment's spec, the image to deploy by digest, who asked and why.

- `rollback_environment` deploys the previous good release's image with a change-cause
  naming the operator and the reason, watches the rollout, runs the checks (the steps of
  `orchestrations.deploying`, as a release's `deploy_environment` takes them), and records
  that release as current and good; on failure it restores what ran before.
- `redeploy_environment` runs a past release through `deploy_environment` again (snapshot,
  deploy, watch, verify, automatic restore).

The rules (operation ids, what counts as good) are in `shared.releases.operations`.
Deterministic: no I/O, no clock outside the context. Does not decide *whether* an
operation may start: the trigger answers 409 before starting it.
"""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from typing import Any

from blueprints import blueprint
from orchestrations.attempts import attempt
from orchestrations.context import OrchestrationContext
from orchestrations.deploying import (
    RETRY,
    deploy_and_verify,
    put_back_and_verify,
    record_deployment,
    restore,
)
from orchestrations.release import Journal, wait_for_turn
from shared.cluster.rollout import RELEASE_ID
from shared.releases.failures import REASON_LIMIT, said
from shared.releases.operations import Deployed, Operation
from shared.releases.outcomes import Outcome, StageResult
from shared.releases.retry import ROLLED_BACK_BY
from shared.text import one_line

bp = blueprint()


def start_journal(context: OrchestrationContext, op: Operation) -> Journal:
    journal = Journal(context, op.plan(), traced=False)  # an operation is no release's trace
    journal.note_operation(op.summary())
    journal.step(op.stage, op.kind)
    return journal


def mark_stage(context: OrchestrationContext, op: Operation, release: Deployed,
               state: str, detail: str) -> Any:
    """Set the release's stage in this environment (its row's other fields stay)."""
    return context.call_activity_with_retry("mark_release_stage", RETRY, {
        "releaseId": release.release_id, "service": op.service,
        "environment": op.environment, "state": state, "detail": one_line(detail, REASON_LIMIT),
        "at": context.current_utc_datetime.isoformat()})


def opened(context: OrchestrationContext,
           ) -> Generator[Any, Any, tuple[Operation, Journal, str | None]]:
    """The operation of the input, its journal, and why it never got the environment's
    turn (None once it has it)."""
    op = Operation.from_input(context.get_input())
    journal = start_journal(context, op)
    refused = yield from claim_turn(context, op, journal)
    return op, journal, refused


def claim_turn(context: OrchestrationContext, op: Operation,
               journal: Journal) -> Generator[Any, Any, str | None]:
    """Take the environment's deploy turn (an older version may go back); why not, if never."""
    refused = yield from wait_for_turn(context, op.plan(), op.stage, journal, [],
                                       reason=op.describe(), older_allowed=True)
    return refused.reason if refused else None


def put_back(context: OrchestrationContext, op: Operation, journal: Journal,
             done: str) -> Generator[Any, Any, dict[str, Any]]:
    """Run the operation's release in its environment again, verify it, and record it as the
    environment's current and good release (`done` says how, in its stage's note); on
    failure restore what ran before.

    A Deployment target gets the release's image; a Helm target `helm rollback` to the
    newest revision that release made (its chart and values as they were)."""
    stage = op.stage
    deadline = context.current_utc_datetime + stage.rollout_timeout
    try:
        snapshot = yield from attempt(context, "snapshot_deployment", op.cluster())
        wanted = None if stage.helm is None else (yield from attempt(
            context, "snapshot_deployment", op.cluster(goodReleaseId=op.release.release_id)))
    except Exception as error:
        return (yield from journal.finish(Outcome.FAILED, stage,
                                          f"nothing changed: {said(error)}"))
    if wanted is not None and (wanted.get("annotations") or {}).get(RELEASE_ID) != \
            op.release.release_id:
        return (yield from journal.finish(Outcome.FAILED, stage, (
            f"nothing changed: Helm's history of {stage.name} has no revision of"
            f" {op.release.release_id} any more (maxHistory)")))
    step = partial(journal.step, stage)
    if wanted is not None:
        verified = yield from put_back_and_verify(
            context, stage, op.cluster, deadline, wanted, op.change_cause(), step)
    else:
        verified = yield from deploy_and_verify(
            context, stage, op.cluster, deadline, image=op.release.image,
            release_id=op.release.release_id, change_cause=op.change_cause(), step=step)
    failure = verified.failure
    if failure is not None and stage.on_failure == "none":
        return (yield from journal.finish(
            Outcome.FAILED, stage, f"{failure}; left in place (rollback.onFailure is none)"))
    if failure is not None:
        journal.step(stage, "restore")
        restored = yield from restore(context, op.cluster, snapshot, failure,
                                      context.current_utc_datetime + stage.rollout_timeout)
        outcome = Outcome.ROLLED_BACK if restored is None else Outcome.FAILED
        return (yield from journal.finish(
            outcome, stage, failure if restored is None else f"{failure}; {restored}"))

    done_request = op.deploy_request()
    if wanted is not None and wanted.get("chart"):  # the chart Helm put back, by name
        done_request["chart"] = {"name": wanted["chart"], "version": wanted.get("chartVersion")}
    yield record_deployment(context, done_request, good=True, revision=verified.revision)
    if op.kind == "rollback" and op.replaces is not None \
            and op.replaces.release_id != op.release.release_id:
        yield mark_stage(context, op, op.replaces, "RolledBack",
                         f"{ROLLED_BACK_BY}{op.by} ({op.operation_id}): {op.reason}")
    yield mark_stage(context, op, op.release, "Healthy",
                     f"{done} by {op.by} ({op.operation_id})")
    return (yield from journal.finish(Outcome.COMPLETED, stage, op.describe()))


# The orchestrations ----------------------------------------------------------------------

@bp.orchestration_trigger(context_name="context")
def rollback_environment(context: OrchestrationContext,
                         ) -> Generator[Any, Any, dict[str, Any]]:
    """Put the previous good release back into one environment, by digest, and verify it."""
    op, journal, refused = yield from opened(context)
    if refused:
        return (yield from journal.finish(Outcome.FAILED, op.stage, refused))
    return (yield from put_back(context, op, journal, "restored"))


@bp.orchestration_trigger(context_name="context")
def redeploy_environment(context: OrchestrationContext,
                         ) -> Generator[Any, Any, dict[str, Any]]:
    """Deploy a past release's image into one environment again, with the usual safety net."""
    op, journal, refused = yield from opened(context)
    stage = op.stage
    if refused:
        return (yield from journal.finish(Outcome.FAILED, stage, refused))
    if stage.helm is not None:  # Helm keeps every revision: put the release's back
        return (yield from put_back(context, op, journal, "redeployed"))
    journal.step(stage, "deploy")
    try:
        result = StageResult.from_dict((yield context.call_sub_orchestrator(
            "deploy_environment", op.deploy_request(), f"{op.operation_id}:deploy")))
    except Exception as error:
        return (yield from journal.finish(Outcome.FAILED, stage, said(error)))
    if result.healthy:
        yield mark_stage(context, op, op.release, "Healthy",
                         f"redeployed by {op.by} ({op.operation_id})")
        return (yield from journal.finish(Outcome.COMPLETED, stage, op.describe()))
    outcome = Outcome.ROLLED_BACK if result.rolled_back else Outcome.FAILED
    yield mark_stage(context, op, op.release, outcome.value,
                     f"redeploy by {op.by} ({op.operation_id}) failed: {result.reason}")
    return (yield from journal.finish(outcome, stage, one_line(result.reason, REASON_LIMIT)))
