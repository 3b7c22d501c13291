"""A release's spans and metrics, written from orchestrator code after each step has ended.

Every span is emitted once, when its step ends, with the orchestration's own times (its
context's clock when the step began and ended) and deterministic ids (a release's trace id
from its id; a span's id from release, environment, step and ordinal), and only when the
orchestrator is not replaying at that moment: a replay runs the same code over the recorded
history with `is_replaying` True and emits nothing. The bookkeeping itself (what is open,
since when, how many of each step) is plain deterministic state, rebuilt by each replay.
Nothing here schedules a task or touches the history; an error is logged, never raised.
See docs/telemetry.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrations.context import OrchestrationContext
from shared.releases.outcomes import Outcome
from shared.releases.plan import ReleasePlan
from shared.telemetry import ids, metrics, spans
from shared.telemetry.logs import RELEASE_ID, SERVICE, release_scope
from shared.telemetry.setup import LOGGER_NAME, enabled

log = logging.getLogger(__name__)
release_log = logging.getLogger(LOGGER_NAME)

# The release orchestrator's journal steps that are spans of their own, by span name; any
# other step ("deploy", "waiting", an outcome) ends the open one. "approved" ends the gate.
RELEASE_STEPS = {"approval": "gate", "promote": "promotion", "promote chart": "chart",
                 "waiting for chart": "chart", "paused": "paused", "kept": "kept",
                 "rolling back": "rollback"}
# `deploy_environment`'s steps (roll_out's and a progressive plan's), by span name.
DEPLOY_STEPS = {"rollout": "readiness", "await": "readiness", "analyse": "analysis",
                "preview": "switch"}
# Which rollback reason kind a failure in each deploy step is (a bounded set).
FAILED_IN = {"deploy": "deploy", "readiness": "readiness", "verify": "verify",
             "analysis": "analysis"}
SUCCEEDED = "succeeded"
OUTCOMES = frozenset(outcome.value for outcome in Outcome)


def guarded(what: str, action: Callable[[], None]) -> None:
    """Run a telemetry action; an error is logged (by type only), never raised."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 (telemetry must never fail an orchestration)
        log.warning("telemetry of %s skipped: %s", what, type(error).__name__)


@dataclass
class Steps:
    """The spans of one parent's steps, in order: a step ends when the next begins, or at
    `end`; each is emitted then, unless the orchestrator replays."""

    context: OrchestrationContext
    release_id: str
    environment: str | None
    parent: int
    attributes: Mapping[str, str]
    attempt: int = 0  # the release's run: 0, then 1, 2, … for its retries
    current: tuple[str, datetime, int] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def begin(self, name: str) -> None:
        """`name` begins now (the open step ends as it began; the same step goes on)."""
        if self.current is not None and self.current[0] == name:
            return
        self.end()
        ordinal = self.counts.get(name, 0)
        self.counts[name] = ordinal + 1
        self.current = (name, self.context.current_utc_datetime, ordinal)

    def end(self, outcome: str = SUCCEEDED) -> tuple[str, datetime] | None:
        """End the open step with `outcome`; its name and start (None when none was open)."""
        if self.current is None:
            return None
        name, start, ordinal = self.current
        self.current = None
        if name == "analysis" and outcome == SUCCEEDED:
            outcome = "passed"  # an analysis the release got past is its verdict: passed
        if not self.context.is_replaying:
            spans.emit(name, self.release_id,
                       ids.span_id(self.release_id, self.environment, name, ordinal,
                                   self.attempt),
                       self.parent, start, self.context.current_utc_datetime,
                       {**self.attributes, "release.step": name, "release.outcome": outcome})
        return name, start


class ReleaseTrace:
    """The release's root span, one span per environment and its release-level steps (gate,
    promotion, chart, pause, decided rollback), and the release's metrics."""

    def __init__(self, context: OrchestrationContext, plan: ReleasePlan, *,
                 on: bool = True) -> None:
        self.on = on and enabled()
        self.context = context
        self.release_id, self.service = plan.release_id, plan.service
        self.attempt = len(plan.retries)
        self.started = context.current_utc_datetime
        self.attributes: dict[str, str] = {}  # telemetry off: nothing is built
        self.environments: dict[str, tuple[datetime, Steps]] = {}
        self.paused: dict[str, datetime] = {}  # a failed deploy waiting for a person, since
        self.received_at: str | None = None  # the registry event's arrival: lead time
        if self.on:
            self.attributes = {RELEASE_ID: plan.release_id, SERVICE: plan.service,
                               "release.version": plan.version, "release.digest": plan.digest}
            trigger = (context.get_input() or {}).get("trigger") or {}
            self.received_at = trigger.get("receivedAt")

    def step(self, environment: str | None, step: str) -> None:
        """The journal's step `step` (in `environment`) begins now."""
        if self.on:
            guarded(step, lambda: self._step(environment, step))

    def _step(self, environment: str | None, step: str) -> None:
        if environment is None:
            return
        steps = self._environment(environment)
        if step == "approved":
            self._end_step(steps, "Approved")
        elif step in OUTCOMES:  # the release ends here: its open step with it
            self._end_step(steps, step)
        elif step in RELEASE_STEPS:
            if step == "paused":
                self.paused.setdefault(environment, self.context.current_utc_datetime)
            steps.begin(RELEASE_STEPS[step])
        else:
            self._end_step(steps, SUCCEEDED)

    def environment_done(self, environment: str, outcome: str) -> None:
        """`environment` ended with `outcome` (Healthy, or the release's outcome there)."""
        if self.on:
            guarded("environment", lambda: self._environment_done(environment, outcome))

    def rolling_back(self, environment: str, kind: str) -> None:
        """`environment` is being rolled back for a reason of `kind` (instruments.py)."""
        if self.on and not self.context.is_replaying:
            guarded("rollback", lambda: metrics.rolled_back(self.service, environment, kind))

    def finish(self, outcome: str, environment: str | None) -> None:
        """The release ended: its open step, environments and root span end with `outcome`;
        the release metrics are recorded, and one log line says it."""
        if not self.context.is_replaying:
            with release_scope(self.attributes or None):
                release_log.info("release %s ended: %s", self.release_id, outcome)
        if self.on:
            guarded("finish", lambda: self._finish(outcome, environment))

    def _finish(self, outcome: str, environment: str | None) -> None:
        for name in list(self.environments):
            self._environment_done(name, outcome if name == environment or outcome != "Completed"
                                   else "Healthy")
        if self.context.is_replaying:
            return
        now = self.context.current_utc_datetime
        spans.emit("release", self.release_id,
                   ids.release_span_id(self.release_id, self.attempt), None,
                   self.started, now, {**self.attributes, "release.outcome": outcome})
        metrics.release_ended(self.service, outcome, self._lead_time(now)
                              if outcome == "Completed" else None)

    def _lead_time(self, now: datetime) -> float | None:
        if not self.received_at:
            return None
        try:
            received = datetime.fromisoformat(self.received_at)
        except ValueError:
            return None
        return (now - received).total_seconds() if received.tzinfo else None

    def _environment(self, name: str) -> Steps:
        if name not in self.environments:
            self.environments[name] = (self.context.current_utc_datetime, Steps(
                self.context, self.release_id, name, ids.environment_span_id(
                    self.release_id, name, self.attempt),
                {**self.attributes, "release.environment": name}, self.attempt))
        return self.environments[name][1]

    def _environment_done(self, name: str, outcome: str) -> None:
        opened = self.environments.pop(name, None)
        if opened is None:
            return
        start, steps = opened
        self._end_step(steps, outcome)
        if not self.context.is_replaying:
            spans.emit("environment", self.release_id, steps.parent,
                       ids.release_span_id(self.release_id, self.attempt), start,
                       self.context.current_utc_datetime,
                       {**steps.attributes, "release.step": "environment",
                        "release.outcome": outcome})

    def _end_step(self, steps: Steps, outcome: str) -> None:
        ended = steps.end(outcome)
        if ended is None or self.context.is_replaying:
            return
        now, environment = self.context.current_utc_datetime, str(steps.environment)
        if ended[0] == "gate":
            waited = (now - ended[1]).total_seconds()
            metrics.approval_waited(self.service, environment, outcome, waited)
        elif ended[0] == "rollback" and outcome == "RolledBack" and environment in self.paused:
            # A person's (or the deadline's) rollback: restored, counted from the failure.
            metrics.restored(self.service, environment,
                             (now - self.paused[environment]).total_seconds())


class DeployTrace:
    """`deploy_environment`'s spans (deploy, readiness, verify, analysis, a progressive
    plan's steps, restore), children of its environment's span, and the time to detect and
    to restore."""

    def __init__(self, context: OrchestrationContext, job: Mapping[str, Any]) -> None:
        release_id, environment = str(job["releaseId"]), str(job["stage"]["name"])
        # A release's own deploy (instance `<release>:<environment>`), not an operation's
        # redeploy of a past release: that one is no step of the release's trace.
        self.on = enabled() and context.instance_id == f"{release_id}:{environment}"
        self.context = context
        self.service, self.environment = str(job["service"]), environment
        self.steps = Steps(context, release_id, environment, 0, {})
        if self.on:  # telemetry off: nothing is built
            attempt = int(job.get("attempt") or 0)  # a retried release's run
            self.steps = Steps(context, release_id, environment,
                               ids.environment_span_id(release_id, environment, attempt),
                               {RELEASE_ID: release_id, SERVICE: self.service,
                                "release.version": str(job.get("version")),
                                "release.digest": str(job.get("digest")),
                                "release.environment": environment}, attempt)
        self.began: datetime | None = None
        self.failed: tuple[datetime, str] | None = None

    def step(self, name: str) -> None:
        """A deploy step begins (the callback of roll_out and deploy_in_steps)."""
        if self.on:
            guarded(name, lambda: self._begin(DEPLOY_STEPS.get(name, name)))

    def _begin(self, name: str) -> None:
        if self.began is None:
            self.began = self.context.current_utc_datetime
        self.steps.begin(name)

    def ended(self, failure: str | None, inconclusive: bool = False) -> None:
        """The deploy ended: healthy (`failure` None), failed, or inconclusive."""
        if self.on:
            guarded("deploy end", lambda: self._ended(failure, inconclusive))

    def _ended(self, failure: str | None, inconclusive: bool) -> None:
        failed_in = self.steps.current[0] if self.steps.current else None
        outcome = SUCCEEDED if failure is None else "inconclusive" if inconclusive else "failed"
        self.steps.end(outcome)
        if failure is None:
            return
        now = self.context.current_utc_datetime
        self.failed = (now, FAILED_IN.get(failed_in or "", "other"))
        if self.began is not None and not self.context.is_replaying:
            metrics.failure_detected(self.service, self.environment,
                                     (now - self.began).total_seconds())

    def restoring(self) -> None:
        """The automatic restore begins."""
        if self.on:
            guarded("restore", self._restoring)

    def _restoring(self) -> None:
        self.steps.begin("restore")
        if not self.context.is_replaying:
            kind = self.failed[1] if self.failed else "other"
            metrics.rolled_back(self.service, self.environment, kind)

    def restored(self, problem: str | None) -> None:
        """The restore ended: restored (None) or why not."""
        if self.on:
            guarded("restored", lambda: self._restored(problem))

    def _restored(self, problem: str | None) -> None:
        self.steps.end(SUCCEEDED if problem is None else "failed")
        if problem is None and self.failed is not None and not self.context.is_replaying:
            metrics.restored(self.service, self.environment, (
                self.context.current_utc_datetime - self.failed[0]).total_seconds())
