"""The release: each environment of the plan in order, gated, promoted, deployed, verified.

`release` reads as the business process; the checks before the first environment live in
`preflight`, waiting at a gate in `wait_for_approval`, deploying one environment (with its
automatic rollback) in the `deploy_environment` sub-orchestration, whose steps (deploy →
watch → verify, restore) the operations share (orchestrations/deploying.py). Deterministic: time
comes from the context, every input from the plan taken at ingestion (or at a retry).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from blueprints import blueprint
from orchestrations.attempts import attempt
from orchestrations.charts import pin_chart
from orchestrations.context import OrchestrationContext
from orchestrations.deploying import (
    RETRY,
    deploy_and_verify,
    record_deployment,
    restore,
)
from orchestrations.progressive import deploy_in_steps, serve_kept
from orchestrations.tracing import DeployTrace, ReleaseTrace
from shared.approvals.gate import Tally, decision_event
from shared.helm.pins import PinnedChart
from shared.releases.charts import helm_fields
from shared.releases.failures import REASON_LIMIT, said
from shared.releases.outcomes import APPROVED, GateDecision, Outcome, StageResult
from shared.releases.pause import Choice, PauseRules, failure_event, on_deadline, read_choice
from shared.releases.plan import (
    APPROVAL_SETTINGS,
    ReleasePlan,
    Stage,
    cluster_request,
    early_failure_record,
    query_variables,
)
from shared.releases.status import HelmDeployed, HistoryEntry, ReleaseStatus
from shared.releases.turns import turn_event
from shared.releases.waiting import ApprovalWait, FailureWait, TurnWait, Waiting
from shared.text import one_line

bp = blueprint()
TURN_POLL = timedelta(seconds=30)
SUPERSEDED = "superseded"


@bp.orchestration_trigger(context_name="context")
def release(context: OrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    plan = ReleasePlan.from_input(context.get_input())
    journal = Journal(context, plan)  # the first stage's step writes the ledger row
    unusable = yield from preflight(context, plan)
    if unusable:
        return (yield from journal.finish(Outcome.FAILED, reason=unusable))
    deployed: list[tuple[Stage, dict[str, Any]]] = []
    chart: PinnedChart | None = None  # pinned by the first Helm environment

    for stage in plan.stages:
        gate = None
        if stage.gate:
            gate = yield from wait_for_approval(context, plan, stage, journal)
            if not gate.approved:
                return (yield from journal.finish(gate.ended, stage, gate.reason))
            journal.step(stage, "approved", detail=gate.reason)  # by whom, and why
        result = yield from deliver(context, plan, stage, journal, gate, chart)
        if result.chart:
            chart = PinnedChart.from_dict(result.chart)
        if result.healthy:
            deployed.append((stage, result.snapshot or {}))
            journal.note_evidence(stage, result.evidence)
            if chart is not None and result.revision is not None:
                journal.note_helm(stage, chart, result.revision)
            if stage != plan.stages[-1]:  # the last one is recorded with the outcome
                yield journal.record("Running", stage, stage_state="Healthy", stage_finished=True)
            continue
        outcome, reason = result.outcome or Outcome.FAILED, result.reason or ""
        if result.failed_deploying and not result.kept \
                and stage.on_failure == "environmentAndEarlier":
            for earlier, _ in deployed:
                journal.trace.rolling_back(earlier.name, "later failure")
            problems = yield from roll_back_earlier(context, plan, deployed)
            reason = "; ".join([reason, *problems])
        if gate:  # the approvers hear how it ended
            yield from notify(context, {**gate.card, "outcome": outcome.value,
                                        "by": None, "reason": reason})
        return (yield from journal.finish(outcome, stage, reason))

    return (yield from journal.finish(Outcome.COMPLETED, healthy=plan.stages[-1]))


def preflight(context: OrchestrationContext,
              plan: ReleasePlan) -> Generator[Any, Any, str | None]:
    """Why the release cannot get through, found before anything is deployed; None if not.

    Runs only the checks the input names: a history recorded before a check existed has
    none there, so it replays as it was recorded."""
    if APPROVAL_SETTINGS not in plan.preflight or not plan.gates:
        return None
    try:
        found = yield context.call_activity("check_approval_settings", {
            "service": plan.service, "gates": plan.gates})
    except Exception as failure:
        return f"nothing deployed: the approval settings could not be checked: {said(failure)}"
    problems = found.get("problems") or []
    if not problems:
        return None
    return one_line("nothing deployed: the approval gates of this release cannot work: "
                    + "; ".join(problems), REASON_LIMIT)


def deliver(context: OrchestrationContext, plan: ReleasePlan, stage: Stage,
            journal: Journal, gate: GateDecision | None,
            chart: PinnedChart | None) -> Generator[Any, Any, StageResult]:
    """Promote, pin the chart (a Helm target), take the environment's turn, deploy;
    `deploy_environment`'s result, or why not."""
    pinned: dict[str, Any] | None = None
    try:
        if stage.promotion:
            journal.step(stage, "promote")
            yield from attempt(context, "promote_image", plan.promotion_request(stage))
        if stage.helm is not None:
            found = yield from pin_chart(context, plan, stage, chart,
                                         lambda step, detail: journal.step(stage, step,
                                                                           detail=detail))
            if isinstance(found, str):
                return StageResult(False, found, outcome=Outcome.FAILED)
            pinned = found.to_dict()
        journal.step(stage, "deploy")
        approved = [context.call_activity("notify_gate", gate.card)] if gate else []
        refused = yield from wait_for_turn(context, plan, stage, journal, approved)
        if refused:
            return refused
        result = StageResult.from_dict((yield context.call_sub_orchestrator(
            "deploy_environment", plan.deploy_request(stage, pinned),
            f"{plan.release_id}:{stage.name}")))
        if result.paused:
            result = yield from settle_failure(context, plan, stage, journal, gate, result)
    except Exception as failure:
        return StageResult(False, said(failure), outcome=Outcome.FAILED)
    if result.healthy:
        return result
    return replace(result, outcome=Outcome.ROLLED_BACK if result.rolled_back else Outcome.FAILED)


def wait_for_approval(context: OrchestrationContext, plan: ReleasePlan, stage: Stage,
                      journal: Journal) -> Generator[Any, Any, GateDecision]:
    """Open the gate, then take decisions until one settles it, a newer release, or the deadline.

    Every decision is checked by an activity before it counts; reminders go out in between."""
    rules = stage.gate
    assert rules is not None  # the release waits only at a stage with a gate
    opened = context.current_utc_datetime
    deadline = opened + rules.deadline
    request = plan.approval_request(stage, deadline, journal.evidence_before(stage))
    tally, number, reminders = Tally(rules.required_approvals), 1, 0
    links: dict[str, Any] = {}  # the signed links, once request_approval has made them

    def waiting() -> ApprovalWait:
        return ApprovalWait(stage.name, decision_event(stage.name, number), deadline.isoformat(),
                            required_approvals=rules.required_approvals,
                            approvals=tuple(tally.summary()),
                            reminders=reminders, approval_page=links.get("approvalPage"),
                            approval_links=tuple(links.get("approvalLinks") or []))

    try:
        links, _ = yield context.task_all([  # sign the links and say so in the ledger at once
            # The image's registry and repository ride along (not in `request`, which the
            # cards repeat) so the activity can read what the release changes.
            context.call_activity("request_approval", {**request, "image": {
                "registry": plan.source_registry, "repository": plan.source_repository}}),
            journal.record("WaitingForApproval", stage, stage_state="WaitingForApproval",
                           step="approval")])
    except Exception as failure:
        return GateDecision(Outcome.FAILED.value, said(failure))
    journal.step(stage, "approval", waiting(), detail=links.get("notice"))
    while True:
        decision = context.wait_for_external_event(decision_event(stage.name, number))
        superseded = context.wait_for_external_event(SUPERSEDED)
        timer = context.create_timer(rules.next_wake(opened, reminders))
        winner = yield context.task_any([decision, superseded, timer])
        if winner == timer and context.current_utc_datetime < deadline:
            reminders += 1
            sent = yield from notify(context, {
                **request, "links": links, "kind": "reminder", "number": reminders,
                "total": rules.reminders_before_deadline,
                "escalatedTo": rules.escalated_to(reminders)})
            journal.step(stage, "approval", waiting(), detail=sent)
            continue
        if winner != timer:
            timer.cancel()
        if winner == decision:
            number += 1
            verdict = yield from attempt(context, "check_approval", {
                "releaseId": plan.release_id, "environment": stage.name, "gate": rules.to_dict(),
                "pushedBy": plan.pushed_by, "decision": _decoded(decision.result)})
            tally.add(verdict)
            if tally.outcome is None:
                journal.step(stage, "approval", waiting(), detail=_verdict_note(verdict))
                continue
            outcome, reason = tally.outcome, tally.reason
            by, comment = verdict["by"], verdict.get("comment")
        elif winner == superseded:
            newer = _newer_push(plan, _decoded(superseded.result))
            outcome, reason = Outcome.SUPERSEDED.value, f"superseded by {newer}"
            by, comment = newer, None
        else:
            outcome, reason = Outcome.EXPIRED.value, f"no decision by {deadline.isoformat()}"
            by, comment = None, None
        card = {**request, "links": links, "kind": "outcome", "outcome": outcome, "by": by,
                "reason": comment}
        if outcome != APPROVED:  # an approval is told as the stage is claimed
            yield from notify(context, card)
        return GateDecision(outcome, reason, card)


def settle_failure(context: OrchestrationContext, plan: ReleasePlan, stage: Stage,
                   journal: Journal, gate: GateDecision | None,
                   failed: StageResult) -> Generator[Any, Any, StageResult]:
    """A failed deployment waits for a person to roll it back or keep it (the environment
    stays this release's turn meanwhile); without a choice by the deadline, `onFailure`."""
    rules = PauseRules.of(stage.rollback, inconclusive=failed.inconclusive)
    assert rules is not None
    deadline = context.current_utc_datetime + rules.deadline
    failure, number = failed.reason or "", 1

    def waiting() -> FailureWait:
        return FailureWait(stage.name, failure_event(stage.name, number), deadline.isoformat(),
                           failure=failure, on_deadline=rules.on_deadline)

    journal.step(stage, "paused", waiting(), detail=failure)
    yield journal.record("Running", stage, failure, stage_state="Deploying", step="paused")
    if gate:  # the environment's approvers hear of it
        notice = yield from notify(context, {
            **gate.card, "kind": "paused", "failure": failure,
            "pauseDeadline": deadline.isoformat(), "onDeadline": rules.on_deadline})
        if notice:
            journal.step(stage, "paused", waiting(), detail=notice)
    timer = context.create_timer(deadline)
    while True:
        event = context.wait_for_external_event(failure_event(stage.name, number))
        winner = yield context.task_any([event, timer])
        if winner == timer:
            choice = on_deadline(rules)
            break
        number += 1
        read = read_choice(_decoded(event.result))
        if isinstance(read, Choice):
            timer.cancel()
            choice = read
            break
        journal.step(stage, "paused", waiting(), detail=f"decision not taken: {read}")
    settled = f"{failure}; {choice.describe(deadline)}"
    if choice.choice == "keep":
        journal.step(stage, "kept", detail=choice.describe(deadline))
        problem = None
        if stage.environment.strategy.KIND != "rolling":
            # A canary at its share or an unswitched slot is no state to keep: the kept
            # version becomes the one that serves (or, when it cannot, is rolled back).
            problem = yield from serve_kept(
                context, stage, lambda **fields: cluster_request(stage, **fields),
                context.current_utc_datetime + stage.rollout_timeout,
                image=plan.image_in(stage), release_id=plan.release_id,
                change_cause=f"release {plan.release_id}: {plan.service} {plan.version}")
        if problem is None:
            yield record_deployment(context, plan.deploy_request(stage), good=False)
            return replace(failed, paused=False, kept=True, reason=settled)
        settled = f"{settled}; it could not be made the version that serves: {problem}"
    journal.step(stage, "rolling back", detail=choice.describe(deadline))
    journal.trace.rolling_back(stage.name, "decided")
    restored = yield from restore(context, lambda **fields: cluster_request(stage, **fields),
                                  failed.snapshot or {}, failure,
                                  context.current_utc_datetime + stage.rollout_timeout)
    return replace(failed, paused=False, rolled_back=restored is None,
                   reason=settled if restored is None else f"{settled}; {restored}")


def notify(context: OrchestrationContext,
           card: dict[str, Any]) -> Generator[Any, Any, str | None]:
    """Post a reminder or outcome card; what went wrong, if anything (never raises)."""
    try:
        sent = yield context.call_activity("notify_gate", card)
    except Exception as error:
        return f"Teams card not posted: {said(error)}"
    notice = sent.get("notice")
    return None if notice is None else str(notice)


def wait_for_turn(context: OrchestrationContext, plan: ReleasePlan, stage: Stage,
                  journal: Journal, along: list[Any], *, reason: str | None = None,
                  older_allowed: bool = False) -> Generator[Any, Any, StageResult | None]:
    """Claim the stage (`Deploying`) and the environment's turn, waiting while an earlier
    release or operation deploys there; None, or the refusal that deploys nothing there.

    A newer version already running here supersedes this release (unless `older_allowed`:
    a rollback). Whoever ends a stage there wakes the waiter (`turn_event`), else it tries
    again every `TURN_POLL`; the wait is bounded by twice the stage's rollout timeout, so a
    stale ledger row cannot hold it forever. `along` are tasks to run with the first claim
    (they must not fail)."""
    give_up = context.current_utc_datetime + 2 * stage.rollout_timeout
    claim = {"record": journal.progress("Running", stage, reason, stage_state="Deploying"),
             "version": plan.version, "olderAllowed": older_allowed}
    announced, number = None, 0
    while True:
        number += 1
        wake = turn_event(stage.name, number)
        request = {**claim, "wake": wake, "waited": number > 1}
        turn, *_ = yield context.task_all(
            [context.call_activity_with_retry("claim_stage", RETRY, request), *along])
        along, first = [], turn["waitFor"]
        if first is None and turn["newer"]:
            newer = turn["newer"]["version"]
            return StageResult(False, f"superseded by {newer}, which already runs in"
                               f" {stage.name}; an older version is not deployed over it",
                               outcome=Outcome.SUPERSEDED)
        if first is None:
            return None
        if context.current_utc_datetime >= give_up:
            return StageResult(False, f"{first} was still deploying in {stage.name} at"
                               f" {give_up.isoformat()}; this release deployed nothing there:"
                               " redeploy it when that is done", outcome=Outcome.FAILED)
        if first != announced:
            announced = first
            journal.step(stage, "waiting", TurnWait(first, give_up.isoformat()))
        # The poll keeps the sequence number the timer alone had: earlier histories replay.
        poll = context.create_timer(context.current_utc_datetime + TURN_POLL)
        freed = context.wait_for_external_event(wake)
        if (yield context.task_any([poll, freed])) == freed:
            poll.cancel()


@bp.orchestration_trigger(context_name="context")
def deploy_environment(context: OrchestrationContext,
                       ) -> Generator[Any, Any, dict[str, Any]]:
    """Snapshot, deploy, watch the rollout, verify (a blue-green or canary environment: its
    plan's steps); on failure restore the snapshot."""
    job = context.get_input()
    stage = Stage.from_dict(job["stage"])
    helm = helm_fields(stage, job)  # nothing for a Deployment target

    def cluster(**fields: Any) -> dict[str, Any]:
        return cluster_request(stage, **helm, **fields)

    def report(early: str) -> Any:  # a Helm failure seen while Helm still waits
        return context.call_activity_with_retry("record_release", RETRY, early_failure_record(
            job, context.current_utc_datetime, one_line(early, REASON_LIMIT)))

    deadline = context.current_utc_datetime + stage.rollout_timeout
    change_cause = f"release {job['releaseId']}: {job['service']} {job['version']}"
    trace = DeployTrace(context, job)  # spans of the steps, under the environment's span
    snapshot = yield from attempt(context, "snapshot_deployment", cluster())
    if stage.environment.strategy.KIND == "rolling":
        verified = yield from deploy_and_verify(
            context, stage, cluster, deadline, image=job["image"], release_id=job["releaseId"],
            change_cause=change_cause, step=trace.step, report=report,
            variables=query_variables(stage, job))
    else:  # blue-green or canary: the plan's steps (policies before strategies never get here)
        verified = yield from deploy_in_steps(
            context, stage, cluster, image=job["image"], release_id=job["releaseId"],
            change_cause=change_cause, variables=query_variables(stage, job), begin=trace.step)
    failure, evidence = verified.failure, verified.evidence
    trace.ended(failure, verified.inconclusive)
    if failure is None:
        yield record_deployment(context, job, good=True, revision=verified.revision)
        return StageResult(True, snapshot=snapshot, evidence=evidence, chart=job.get("chart"),
                           revision=verified.revision).to_dict()
    if not verified.changed and stage.helm is not None:  # refused before the cluster
        return StageResult(False, f"nothing deployed: {failure}", snapshot,
                           rolled_back=False).to_dict()
    if PauseRules.of(stage.rollback, inconclusive=verified.inconclusive):  # a person first
        return StageResult(False, failure, snapshot, rolled_back=False, paused=True,
                           inconclusive=verified.inconclusive).to_dict()
    if stage.on_failure == "none":
        yield record_deployment(context, job, good=False,  # what runs there, not good
                                revision=verified.revision)
        return StageResult(False, failure, snapshot, rolled_back=False).to_dict()
    trace.restoring()
    restored = yield from restore(context, cluster, snapshot, failure,
                                  context.current_utc_datetime + stage.rollout_timeout)
    trace.restored(restored)
    return StageResult(False, failure if restored is None else f"{failure}; {restored}",
                       snapshot, rolled_back=restored is None).to_dict()


def roll_back_earlier(context: OrchestrationContext, plan: ReleasePlan,
                      deployed: list[tuple[Stage, dict[str, Any]]],
                      ) -> Generator[Any, Any, list[str]]:
    """Restore every earlier environment this release changed, latest first.

    The ledger then names the restored release as current again; returns what failed."""
    problems = []
    for stage, snapshot in reversed(deployed):
        def cluster(stage: Stage = stage, **fields: Any) -> dict[str, Any]:
            return cluster_request(stage, **fields)

        problem = yield from restore(context, cluster, snapshot,
                                     f"release {plan.release_id} failed later",
                                     context.current_utc_datetime + stage.rollout_timeout)
        restored = plan.restored_deployment(stage, snapshot, context.current_utc_datetime)
        if problem:
            problems.append(f"{stage.name}: {problem}")
        elif restored:
            yield context.call_activity_with_retry("record_deployment", RETRY, restored)
    return problems


class Journal:
    """Keeps the custom status (no secrets), the ledger row and the release's trace
    (orchestrations/tracing.py) in step with the release."""

    def __init__(self, context: OrchestrationContext, plan: ReleasePlan, *,
                 traced: bool = True) -> None:
        self.context = context
        self.plan = plan
        # The release's spans and metrics, emitted as its steps end (`traced`: a release).
        self.trace = ReleaseTrace(context, plan, on=traced)
        self.status = ReleaseStatus(
            plan.release_id, plan.service, plan.version, plan.digest, plan.pushed_by,
            overwrites=plan.overwrites,  # the tag was pushed before as another image
            history=tuple(  # what started this run again: who, when, why
                HistoryEntry(retry.get("at"), None, "retried", describe_retry(retry))
                for retry in plan.retries))
        self.publish()

    def publish(self, **changes: Any) -> None:
        """Change the status and show it as the instance's custom status."""
        self.status = replace(self.status, **changes)
        self.context.set_custom_status(self.status.to_dict())

    def note_operation(self, summary: dict[str, Any]) -> None:
        """An operation's who, what and why, for its status."""
        self.publish(operation=summary)

    def note_evidence(self, stage: Stage, evidence: str | None) -> None:
        """What verified `stage`, for its status and the next gate's approvers."""
        self.publish(evidence={**self.status.evidence, stage.name: evidence})

    def note_helm(self, stage: Stage, chart: PinnedChart, revision: int) -> None:
        """The chart and Helm revision `stage` runs now, for its status."""
        self.publish(helm={**self.status.helm, stage.name: HelmDeployed(
            chart.name, chart.version, chart.digest, revision)})

    def evidence_before(self, stage: Stage) -> str | None:
        """The verification evidence of the environment deployed last before `stage`."""
        names = [s.name for s in self.plan.stages]
        evidence = self.status.evidence
        for name in reversed(names[:names.index(stage.name)]):
            if evidence.get(name):
                return f"{name}: {evidence[name]}"
        return None

    def step(self, stage: Stage | None, step: str, waiting: Waiting | None = None, *,
             detail: str | None = None) -> None:
        """Say what the release does now, and add it to the history."""
        environment = stage.name if stage else None
        self.trace.step(environment, step)
        entry = HistoryEntry(self.context.current_utc_datetime.isoformat(), environment, step,
                             detail)
        self.publish(environment=environment, step=step, waiting_for=waiting,
                     history=(*self.status.history, entry))

    def progress(self, state: str, stage: Stage | None = None, reason: str | None = None, *,
                 stage_state: str | None = None, stage_finished: bool = False,
                 step: str | None = None) -> dict[str, Any]:
        """`record_release`'s input for the release's row now (at `step`, else the current)."""
        record = self.plan.release_record(state, self.context.current_utc_datetime,
                                          environment=stage.name if stage else None,
                                          step=step or self.status.step, reason=reason)
        record.update(stageState=stage_state, stageFinished=stage_finished)
        return record

    def record(self, state: str, stage: Stage | None = None, reason: str | None = None,
               **stage_fields: Any) -> Any:
        if stage is not None and state == "Running" and stage_fields.get("stage_finished"):
            self.trace.environment_done(stage.name, str(stage_fields.get("stage_state")))
        return self.context.call_activity_with_retry(
            "record_release", RETRY, self.progress(state, stage, reason, **stage_fields))

    def finish(self, ended: Outcome, stage: Stage | None = None, reason: str | None = None, *,
               healthy: Stage | None = None) -> Generator[Any, Any, dict[str, Any]]:
        """Record the outcome; `healthy` names a stage that ends healthy with it."""
        outcome = ended.value
        self.step(stage, outcome)
        self.trace.finish(outcome, stage.name if stage else None)
        self.publish(finished=True, outcome=ended, reason=reason)
        if stage is not None:
            yield self.record(outcome, stage, reason, stage_state=outcome, stage_finished=True)
        else:
            yield self.record(outcome, healthy, reason, stage_finished=True,
                              stage_state="Healthy" if healthy else None)
        return {"releaseId": self.plan.release_id, "outcome": outcome,
                "environment": stage.name if stage else None, "reason": reason}


def describe_retry(retry: dict[str, Any]) -> str:
    """`retry 1 by ann@example.com: setting fixed (after Failed: …)`, for the history."""
    after = retry.get("after") or {}
    ended = f" (after {after.get('outcome') or 'Failed'}" + (
        f": {after['reason']})" if after.get("reason") else ")")
    why = f": {retry['reason']}" if retry.get("reason") else ""
    return one_line(f"retry {retry.get('number') or ''} by {retry.get('by')}{why}{ended}",
                    REASON_LIMIT)


def _newer_push(plan: ReleasePlan, data: dict[str, Any]) -> str:
    """What superseded this release: a newer version, or its own tag pushed again."""
    version = data.get("version") or "a newer release"
    if version == plan.version and data.get("digest"):
        return f"{version} pushed again as {data['digest']}"
    return version


def _decoded(value: Any) -> dict[str, Any]:
    """Event data arrives as a dict, or JSON text when the SDK client encoded it twice."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _verdict_note(verdict: dict[str, Any]) -> str:
    """One history line for a decision that did not settle the gate."""
    if verdict.get("counted"):
        return f"approved by {verdict['by']}; more approvals needed"
    return f"not counted: {verdict.get('reason')}"

