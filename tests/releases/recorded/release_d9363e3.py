"""The release: each environment of the plan in order, gated, promoted, deployed, verified.

`release` reads as the business process; the checks before the first environment live in
`preflight`, waiting at a gate in `wait_for_approval`, deploying one environment (with its
automatic rollback) in the `deploy_environment` sub-orchestration. Deterministic: time
comes from the context, every input from the plan taken at ingestion (or at a retry).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from shared.approvals.gate import Tally, decision_event
from shared.releases.failures import ATTEMPTS, is_permanent, retry_delay
from shared.releases.pause import Choice, PauseRules, failure_event, on_deadline, read_choice
from shared.releases.plan import APPROVAL_SETTINGS, ReleasePlan, Stage, cluster_request

bp = df.Blueprint()
# Ledger writes: every failure there is worth another try.
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)
ROLLOUT_CHECK_SECONDS = 20
TURN_POLL = timedelta(seconds=30)
SUPERSEDED = "superseded"


@bp.orchestration_trigger(context_name="context")
def release(context: df.DurableOrchestrationContext):
    plan = ReleasePlan.from_input(context.get_input())
    journal = Journal(context, plan)  # the first stage's step writes the ledger row
    unusable = yield from preflight(context, plan)
    if unusable:
        return (yield from journal.finish("Failed", reason=unusable))
    deployed: list[tuple[Stage, dict]] = []

    for stage in plan.stages:
        gate = None
        if stage.gate:
            gate = yield from wait_for_approval(context, plan, stage, journal)
            if gate["outcome"] != "Approved":
                return (yield from journal.finish(gate["outcome"], stage, gate["reason"]))
            journal.step(stage, "approved", detail=gate["reason"])  # by whom, and why
        result = yield from deliver(context, plan, stage, journal, gate)
        if result["healthy"]:
            deployed.append((stage, result["snapshot"]))
            journal.evidence[stage.name] = result.get("evidence")
            if stage != plan.stages[-1]:  # the last one is recorded with the outcome
                yield journal.record("Running", stage, stage_state="Healthy", stage_finished=True)
            continue
        reason = result["reason"]
        if "rolledBack" in result and not result.get("kept") \
                and stage.on_failure == "environmentAndEarlier":
            problems = yield from roll_back_earlier(context, plan, deployed)
            reason = "; ".join([reason, *problems])
        if gate:  # the approvers hear how it ended
            yield from notify(context, {**gate["card"], "outcome": result["outcome"],
                                        "by": None, "reason": reason})
        return (yield from journal.finish(result["outcome"], stage, reason))

    return (yield from journal.finish("Completed", healthy=plan.stages[-1]))


def preflight(context: df.DurableOrchestrationContext,
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
        return f"nothing deployed: the approval settings could not be checked: {_reason(failure)}"
    problems = found.get("problems") or []
    if not problems:
        return None
    return _reason("nothing deployed: the approval gates of this release cannot work: "
                   + "; ".join(problems))


def deliver(context: df.DurableOrchestrationContext, plan: ReleasePlan, stage: Stage,
            journal: Journal, gate: dict | None) -> Generator[Any, Any, dict[str, Any]]:
    """Promote, take the environment's turn, deploy; `deploy_environment`'s result, or why not."""
    try:
        if stage.promotion:
            journal.step(stage, "promote")
            yield from attempt(context, "promote_image", plan.promotion_request(stage))
        journal.step(stage, "deploy")
        approved = [context.call_activity("notify_gate", gate["card"])] if gate else []
        refused = yield from take_turn(context, plan, stage, journal, approved)
        if refused:
            return {"healthy": False, **refused}
        result = yield context.call_sub_orchestrator(
            "deploy_environment", plan.deploy_request(stage), f"{plan.release_id}:{stage.name}")
        if result.get("paused"):
            result = yield from settle_failure(context, plan, stage, journal, gate, result)
    except Exception as failure:
        return {"healthy": False, "outcome": "Failed", "reason": _reason(failure)}
    if result["healthy"]:
        return result
    return {**result, "outcome": "RolledBack" if result["rolledBack"] else "Failed"}


def wait_for_approval(context: df.DurableOrchestrationContext, plan: ReleasePlan, stage: Stage,
                      journal: Journal) -> Generator[Any, Any, dict[str, Any]]:
    """Open the gate, then take decisions until one settles it, a newer release, or the deadline.

    Every decision is checked by an activity before it counts; reminders go out in between."""
    rules = stage.gate  # typed since the policy model is read once (names only changed)
    assert rules is not None
    opened = context.current_utc_datetime
    deadline = opened + rules.deadline
    request = plan.approval_request(stage, deadline, journal.evidence_before(stage))
    tally, number, reminders, links = Tally(rules.required_approvals), 1, 0, {}

    def waiting() -> dict[str, Any]:
        return {"kind": "approval", "environment": stage.name,
                "event": decision_event(stage.name, number), "deadline": deadline.isoformat(),
                "requiredApprovals": rules.required_approvals, "approvals": tally.summary(),
                "reminders": reminders, "approvalPage": links.get("approvalPage"),
                "approvalLinks": links.get("approvalLinks") or []}

    try:
        links, _ = yield context.task_all([  # sign the links and say so in the ledger at once
            context.call_activity("request_approval", request),
            journal.record("WaitingForApproval", stage, stage_state="WaitingForApproval",
                           step="approval")])
    except Exception as failure:
        return {"outcome": "Failed", "reason": _reason(failure)}
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
                "releaseId": plan.release_id, "environment": stage.name,
                "gate": stage.to_dict()["gate"],
                "pushedBy": plan.pushed_by, "decision": _decoded(decision.result)})
            tally.add(verdict)
            if tally.outcome is None:
                journal.step(stage, "approval", waiting(), detail=_verdict_note(verdict))
                continue
            outcome, reason = tally.outcome, tally.reason
            by, comment = verdict["by"], verdict.get("comment")
        elif winner == superseded:
            newer = _newer_push(plan, _decoded(superseded.result))
            outcome, reason, by, comment = "Superseded", f"superseded by {newer}", newer, None
        else:
            outcome, reason = "Expired", f"no decision by {deadline.isoformat()}"
            by, comment = None, None
        card = {**request, "links": links, "kind": "outcome", "outcome": outcome, "by": by,
                "reason": comment}
        if outcome != "Approved":  # an approval is told as the stage is claimed
            yield from notify(context, card)
        return {"outcome": outcome, "reason": reason, "links": links, "request": request,
                "card": card}


def settle_failure(context: df.DurableOrchestrationContext, plan: ReleasePlan, stage: Stage,
                   journal: Journal, gate: dict | None,
                   failed: dict[str, Any]) -> Generator[Any, Any, dict[str, Any]]:
    """A failed deployment waits for a person to roll it back or keep it (the environment
    stays this release's turn meanwhile); without a choice by the deadline, `onFailure`."""
    rules = PauseRules.of(stage.rollback)
    assert rules is not None
    deadline = context.current_utc_datetime + rules.deadline
    failure, number = failed["reason"], 1

    def waiting() -> dict[str, Any]:
        return {"kind": "failure", "environment": stage.name,
                "event": failure_event(stage.name, number), "deadline": deadline.isoformat(),
                "failure": failure, "onDeadline": rules.on_deadline}

    journal.step(stage, "paused", waiting(), detail=failure)
    yield journal.record("Running", stage, failure, stage_state="Deploying", step="paused")
    if gate:  # the environment's approvers hear of it
        notice = yield from notify(context, {
            **gate["card"], "kind": "paused", "failure": failure,
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
        yield record_deployment(context, plan.deploy_request(stage), good=False)
        return {**failed, "paused": False, "kept": True, "reason": settled}
    journal.step(stage, "rolling back", detail=choice.describe(deadline))
    restored = yield from restore(context, lambda **fields: cluster_request(stage, **fields),
                                  failed["snapshot"], failure,
                                  context.current_utc_datetime + stage.rollout_timeout)
    return {**failed, "paused": False, "rolledBack": restored is None,
            "reason": settled if restored is None else f"{settled}; {restored}"}


def notify(context: df.DurableOrchestrationContext,
           card: dict[str, Any]) -> Generator[Any, Any, str | None]:
    """Post a reminder or outcome card; what went wrong, if anything (never raises)."""
    try:
        sent = yield context.call_activity("notify_gate", card)
    except Exception as error:
        return f"Teams card not posted: {_reason(error)}"
    return sent.get("notice")


def take_turn(context: df.DurableOrchestrationContext, plan: ReleasePlan, stage: Stage,
              journal: Journal, along: list[Any], *, reason: str | None = None,
              older_allowed: bool = False) -> Generator[Any, Any, dict[str, str] | None]:
    """Claim the stage (`Deploying`) and the environment's turn, waiting while an earlier
    release or operation deploys there; why not to deploy at all, if so.

    A newer version already running here supersedes this release (unless `older_allowed`:
    a rollback). The wait is bounded by twice the stage's rollout timeout, so a stale ledger
    row cannot hold it forever. `along` are tasks to run with the first claim (they must not
    fail)."""
    give_up = context.current_utc_datetime + 2 * stage.rollout_timeout
    claim = {"record": journal.progress("Running", stage, reason, stage_state="Deploying"),
             "version": plan.version, "olderAllowed": older_allowed}
    announced = None
    while True:
        turn, *_ = yield context.task_all(
            [context.call_activity_with_retry("claim_stage", RETRY, claim), *along])
        along, first = [], turn["waitFor"]
        if first is None and turn["newer"]:
            newer = turn["newer"]["version"]
            return {"outcome": "Superseded", "reason": f"superseded by {newer}, which already"
                    f" runs in {stage.name}; an older version is not deployed over it"}
        if first is None:
            return None
        if context.current_utc_datetime >= give_up:
            return {"outcome": "Failed", "reason": f"{first} was still deploying in {stage.name}"
                    f" at {give_up.isoformat()}; this release deployed nothing there:"
                    " redeploy it when that is done"}
        if first != announced:
            announced = first
            journal.step(stage, "waiting", {"kind": "turn", "behind": first,
                                            "until": give_up.isoformat()})
        yield context.create_timer(context.current_utc_datetime + TURN_POLL)


@bp.orchestration_trigger(context_name="context")
def deploy_environment(context: df.DurableOrchestrationContext):
    """Snapshot, deploy, watch the rollout, verify; on failure restore the snapshot."""
    job = context.get_input()
    stage = Stage.from_dict(job["stage"])
    def cluster(**fields: Any) -> dict[str, Any]:
        return cluster_request(stage, **fields)

    deadline = context.current_utc_datetime + stage.rollout_timeout
    snapshot = yield from attempt(context, "snapshot_deployment", cluster())
    try:
        yield from attempt(context, "deploy_image", cluster(
            image=job["image"], releaseId=job["releaseId"],
            changeCause=f"release {job['releaseId']}: {job['service']} {job['version']}"))
        rollout = yield from watch_rollout(context, cluster, deadline)
        failure = None
        evidence = "rollout complete: " + (rollout.get("message") or "all replicas ready")
        if rollout["state"] != "complete":
            failure = f"rollout {rollout['state']}: {rollout.get('message') or rollout['reason']}"
        elif stage.to_dict().get("checks"):
            verdict = yield context.call_activity("verify_release", {
                "checks": stage.to_dict()["checks"], "secrets": stage.to_dict()["secrets"]})
            evidence = "; ".join(f"{v['check']}: {v['reason']}" for v in verdict["verdicts"])
            if not verdict["passed"]:
                failed = [v for v in verdict["verdicts"] if not v["passed"]]
                failure = "verification failed: " + "; ".join(
                    f"{v['check']}: {v['reason']}" for v in failed)
    except Exception as error:
        failure = _reason(error)
    if failure is None:
        yield record_deployment(context, job, good=True)
        return {"healthy": True, "snapshot": snapshot, "evidence": evidence}
    if PauseRules.of(stage.rollback):  # the release asks a person first
        return {"healthy": False, "rolledBack": False, "paused": True, "reason": failure,
                "snapshot": snapshot}
    if stage.on_failure == "none":
        yield record_deployment(context, job, good=False)  # what runs there, not good
        return {"healthy": False, "rolledBack": False, "reason": failure, "snapshot": snapshot}
    restored = yield from restore(context, cluster, snapshot, failure,
                                  context.current_utc_datetime + stage.rollout_timeout)
    return {"healthy": False, "rolledBack": restored is None, "snapshot": snapshot,
            "reason": failure if restored is None else f"{failure}; {restored}"}


def record_deployment(context: df.DurableOrchestrationContext, job: dict[str, Any], *,
                      good: bool) -> Any:
    """The ledger's note that the deploy request's image now runs in its environment
    (and, when `good`, is the environment's last good release)."""
    return context.call_activity_with_retry("record_deployment", RETRY, {
        "service": job["service"], "environment": job["stage"]["name"],
        "releaseId": job["releaseId"], "digest": job["digest"], "image": job["image"],
        "good": good, "at": context.current_utc_datetime.isoformat()})


def watch_rollout(context: df.DurableOrchestrationContext, cluster: Any,
                  deadline: Any) -> Generator[Any, Any, dict[str, Any]]:
    """Ask the cluster until the rollout completes, fails or the deadline passes."""
    while True:
        status = yield from attempt(context, "await_rollout", cluster(
            deadline=deadline.isoformat(), maxWaitSeconds=ROLLOUT_CHECK_SECONDS))
        if status["state"] != "progressing" or context.current_utc_datetime >= deadline:
            return status


def restore(context: df.DurableOrchestrationContext, cluster: Any, snapshot: dict,
            failure: str, deadline: Any) -> Generator[Any, Any, str | None]:
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
        return f"ROLLBACK FAILED: {_reason(error)}"
    if rollout["state"] != "complete":
        return f"ROLLBACK DID NOT COMPLETE: {rollout.get('message') or rollout['reason']}"
    return None


def roll_back_earlier(context: df.DurableOrchestrationContext, plan: ReleasePlan,
                      deployed: list[tuple[Stage, dict]]) -> Generator[Any, Any, list[str]]:
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


def attempt(context: df.DurableOrchestrationContext, activity: str,
            request: dict[str, Any]) -> Generator[Any, Any, Any]:
    """Run an activity; transient failures are retried with backoff, permanent ones are not."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return (yield context.call_activity(activity, request))
        except Exception as failure:
            if number == ATTEMPTS or is_permanent(str(failure)):
                raise
            yield context.create_timer(context.current_utc_datetime + retry_delay(number))
    raise AssertionError("unreachable")


class Journal:
    """Keeps the custom status (no secrets) and the ledger row in step with the release."""

    def __init__(self, context: df.DurableOrchestrationContext, plan: ReleasePlan) -> None:
        self.context = context
        self.plan = plan
        self.status: dict[str, Any] = {
            "releaseId": plan.release_id, "service": plan.service, "version": plan.version,
            "digest": plan.digest, "pushedBy": plan.pushed_by, "environment": None,
            "step": "starting", "waitingFor": None, "evidence": {}, "history": []}
        if plan.overwrites:  # the tag was pushed before as another image
            self.status["overwrites"] = plan.overwrites
        for retry in plan.retries:  # what started this run again: who, when, why
            self.status["history"].append({"at": retry.get("at"), "environment": None,
                                           "step": "retried", "detail": describe_retry(retry)})
        self.evidence: dict[str, str | None] = self.status["evidence"]
        context.set_custom_status(self.status)

    def evidence_before(self, stage: Stage) -> str | None:
        """The verification evidence of the environment deployed last before `stage`."""
        names = [s.name for s in self.plan.stages]
        for name in reversed(names[:names.index(stage.name)]):
            if self.evidence.get(name):
                return f"{name}: {self.evidence[name]}"
        return None

    def step(self, stage: Stage | None, step: str, waiting: dict | None = None, *,
             detail: str | None = None) -> None:
        """Say what the release does now, and add it to the history."""
        self.status.update(environment=stage.name if stage else None, step=step,
                           waitingFor=waiting)
        entry = {"at": self.context.current_utc_datetime.isoformat(),
                 "environment": self.status["environment"], "step": step}
        self.status["history"].append({**entry, "detail": detail} if detail else entry)
        self.context.set_custom_status(self.status)

    def progress(self, state: str, stage: Stage | None = None, reason: str | None = None, *,
                 stage_state: str | None = None, stage_finished: bool = False,
                 step: str | None = None) -> dict:
        """`record_release`'s input for the release's row now (at `step`, else the current)."""
        record = self.plan.release_record(state, self.context.current_utc_datetime,
                                          environment=stage.name if stage else None,
                                          step=step or self.status["step"], reason=reason)
        record.update(stageState=stage_state, stageFinished=stage_finished)
        return record

    def record(self, state: str, stage: Stage | None = None, reason: str | None = None,
               **stage_fields: Any) -> Any:
        return self.context.call_activity_with_retry(
            "record_release", RETRY, self.progress(state, stage, reason, **stage_fields))

    def finish(self, outcome: str, stage: Stage | None = None, reason: str | None = None, *,
               healthy: Stage | None = None) -> Generator[Any, Any, dict[str, Any]]:
        """Record the outcome; `healthy` names a stage that ends healthy with it."""
        self.step(stage, outcome)
        self.status.update(outcome=outcome, reason=reason)
        self.context.set_custom_status(self.status)
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
    return _reason(f"retry {retry.get('number') or ''} by {retry.get('by')}{why}{ended}")


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


def _reason(error: Exception) -> str:
    return " ".join(str(error).split())[:500]
