"""Deploying a blue-green or canary environment: its plan's steps in order (see
shared/releases/strategies.py), each one activity call or a durable timer, the analysis
between them. How it ends is a `Verified`, as a rolling deploy's is; the caller restores
the snapshot through the target's kind when it failed.

Scheduled only for environments whose policy names one of these strategies (histories of
rolling releases never see it).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from datetime import datetime
from typing import Any

from orchestrations.analysing import analyse
from orchestrations.attempts import attempt
from orchestrations.context import OrchestrationContext
from orchestrations.deploying import ClusterCall, Verified, watch_rollout
from shared.cluster.siblings import canary_name
from shared.cluster.verification import evidence_from_answer
from shared.releases.failures import said
from shared.releases.plan import Stage
from shared.releases.strategies import plan_of
from shared.text import one_line
from shared.timefmt import iso_z

EVIDENCE_LIMIT = 800


def deploy_in_steps(context: OrchestrationContext, stage: Stage, cluster: ClusterCall, *,
                    image: str, release_id: str, change_cause: str,
                    variables: Mapping[str, str], begin: Callable[[str], None] | None = None,
                    ) -> Generator[Any, Any, Verified]:
    """Run the environment's plan for `image`; why it failed (None when it passed) and the
    evidence of every step that measured something; `begin` hears each step's action as it
    begins (it schedules nothing). Each rollout it waits for has the stage's
    `rolloutTimeout` from when that wait begins (a plan lasts longer than one)."""
    plan = plan_of(stage.environment)
    target = stage.environment.deploy_target
    parts = {"stable": str(target["deployment"]), "canary": canary_name(target["deployment"])}
    evidence: list[str] = []
    change = {"image": image, "releaseId": release_id, "changeCause": change_cause}
    shifted, rounds = "canary", 0
    try:
        for step in plan.steps:
            failure: str | None = None
            if begin is not None:
                begin(step.action)
            if step.action == "deploy":
                staged = yield from attempt(context, "deploy_slot", cluster(**change))
                parts.update(new=staged["slot"], old=staged["active"])
            elif step.action == "shift":
                yield from attempt(context, "shift_canary", cluster(
                    **change, canaryPods=step.canary_pods, stablePods=step.stable_pods))
                shifted = step.describe()
            elif step.action == "await":
                deadline = context.current_utc_datetime + stage.rollout_timeout
                failure = yield from _await(context, cluster, deadline, parts[step.part or ""])
            elif step.action == "verify":
                failure = yield from _verify(context, stage, evidence)
            elif step.action in ("preview", "switch"):
                yield from attempt(context, "switch_service", cluster(
                    service=step.service, slot=parts["new"]))
                evidence.append(f"{step.service} switched to {parts['new']}")
            elif step.action == "analyse":
                window = {**variables, "stable": parts.get("old", parts["stable"]),
                          "canary": parts.get("new", parts["canary"]),
                          "windowStart": iso_z(context.current_utc_datetime)}
                analysed = yield from analyse(context, stage, window, release_id,
                                              first_round=rounds + 1)
                rounds += analysed.rounds
                where = f"behind {step.service}" if step.service else f"at {shifted}"
                if analysed.failure is not None:
                    return Verified(f"{analysed.failure} ({where})",
                                    inconclusive=analysed.inconclusive)
                evidence.append(f"{where}: {analysed.evidence}")
            elif step.action == "wait" and step.wait is not None:
                yield context.create_timer(context.current_utc_datetime + step.wait)
            elif step.action == "promote":
                yield from attempt(context, "deploy_image", cluster(**change))
                evidence.append(f"promoted: {parts['stable']} runs the new version")
            elif step.action == "retire":
                evidence.append((yield from _retire(context, cluster, parts[step.part or ""])))
            if failure is not None:
                return Verified(failure)
    except Exception as error:
        return Verified(said(error))
    return Verified(None, one_line("; ".join(evidence), EVIDENCE_LIMIT))


def _await(context: OrchestrationContext, cluster: ClusterCall, deadline: datetime,
           deployment: str) -> Generator[Any, Any, str | None]:
    """Watch one Deployment of the strategy (the canary, a slot, the stable one)."""
    def watched(**fields: Any) -> dict[str, Any]:
        request = cluster(**fields)
        target = {key: request["target"][key] for key in ("cluster", "namespace", "container")}
        return {**request, "target": {**target, "deployment": deployment}}

    rollout = yield from watch_rollout(context, watched, deadline)
    if rollout["state"] == "complete":
        return None
    return f"rollout of {deployment} {rollout['state']}: " \
           f"{rollout.get('message') or rollout['reason']}"


def _verify(context: OrchestrationContext, stage: Stage,
            evidence: list[str]) -> Generator[Any, Any, str | None]:
    """The environment's checks, once (none: nothing to do)."""
    environment = stage.environment
    if not environment.checks:
        return None
    checked = evidence_from_answer((yield context.call_activity("verify_release", {
        "checks": list(environment.checks), "secrets": environment.secrets})))
    if not checked.passed:
        return checked.failure()
    evidence.append(checked.summary)
    return None


def _retire(context: OrchestrationContext, cluster: ClusterCall,
            deployment: str) -> Generator[Any, Any, str]:
    """Scale down or remove what no longer serves; a failure here leaves the release good."""
    try:
        yield from attempt(context, "retire_deployment", cluster(deployment=deployment))
    except Exception as error:
        return f"{deployment} not retired: {said(error)}"
    return f"{deployment} retired"


def serve_kept(context: OrchestrationContext, stage: Stage, cluster: ClusterCall,
               deadline: datetime, *, image: str, release_id: str,
               change_cause: str) -> Generator[Any, Any, str | None]:
    """A person kept a paused canary or blue-green release: the new version becomes the one
    that serves without the steps left (the stable Deployment takes it; `activeService`
    switches to its slot), then the canary goes. Why not, if it could not."""
    try:
        yield from attempt(context, "deploy_image", cluster(
            image=image, releaseId=release_id, changeCause=change_cause))
        rollout = yield from watch_rollout(context, cluster, deadline)
    except Exception as error:
        return said(error)
    if rollout["state"] != "complete":
        return f"rollout {rollout['state']}: {rollout.get('message') or rollout['reason']}"
    if stage.environment.strategy.KIND == "canary":
        yield from _retire(context, cluster, canary_name(stage.environment.deploy_target[
            "deployment"]))
    return None
