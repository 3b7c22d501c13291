"""A strategy as a plan of steps (docs/release-policy.md, strategy): what the orchestrator
runs for a blue-green or canary environment, in order, each step one bounded activity call
or a durable timer. Pure: the plan of an environment's policy, nothing run here.

- `canary`: per weight step, give the canary its share of the replicas (the stable
  Deployment the rest), await the canary, check it once (the first step), analyse; a pause
  step waits; then promote (the stable Deployment takes the new digest), await it, and
  remove the canary.
- `blueGreen`: run the new version in the idle slot, await it, check it, point the preview
  Service at it, analyse it there (if asked), switch the active Service, analyse again (if
  asked), wait the scale-down delay, scale the old slot down.

A failure at any step restores the environment's snapshot through the target's kind: the
canary to zero pods and the stable Deployment as it was; the active Service back to the
old slot (one patch) and the new slot down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from shared.policy.model import Environment
from shared.policy.strategy import BlueGreen, Canary

Action = Literal["deploy", "await", "verify", "analyse", "shift", "wait", "preview",
                 "switch", "promote", "retire"]
Part = Literal["new", "old", "canary", "stable"]  # which Deployment a step is about


@dataclass(frozen=True)
class Step:
    """One step: its action and what it needs (a weight as pods, a wait, a Service, a part)."""

    action: Action
    canary_pods: int | None = None
    stable_pods: int | None = None
    wait: timedelta | None = None
    service: str | None = None
    part: Part | None = None

    def describe(self) -> str:
        """One line for a release's evidence."""
        if self.action == "shift":
            total = (self.canary_pods or 0) + (self.stable_pods or 0)
            return f"canary {self.canary_pods} of {total} pods"
        if self.action == "wait" and self.wait is not None:
            return f"wait {self.wait}"
        if self.action in ("switch", "preview"):
            return f"{self.service} to the new slot"
        if self.action == "analyse" and self.service:
            return f"analysis behind {self.service}"
        return self.action


@dataclass(frozen=True)
class Plan:
    """The steps of one environment's deploy."""

    strategy: str
    steps: tuple[Step, ...]


def plan_of(environment: Environment) -> Plan:
    """The plan the environment's strategy and analysis make (rolling: today's steps)."""
    strategy, analysed = environment.strategy, environment.analysis is not None
    if isinstance(strategy, Canary):
        steps: list[Step] = []
        for step in strategy.steps:
            if step.pause is not None:
                steps.append(Step("wait", wait=step.pause))
                continue
            assert step.weight is not None
            canary, stable = strategy.split(step.weight)
            steps += [Step("shift", canary_pods=canary, stable_pods=stable),
                      Step("await", part="canary")]
            if not any(s.action == "verify" for s in steps):
                steps.append(Step("verify"))
            if analysed:
                steps.append(Step("analyse"))
        steps += [Step("promote"), Step("await", part="stable"),
                  Step("retire", part="canary")]
        return Plan(Canary.KIND, tuple(steps))
    if isinstance(strategy, BlueGreen):
        steps = [Step("deploy", part="new"), Step("await", part="new"), Step("verify"),
                 Step("preview", service=strategy.preview_service)]
        if analysed and strategy.pre_promotion_analysis:
            steps.append(Step("analyse", service=strategy.preview_service))
        steps.append(Step("switch", service=strategy.active_service))
        if analysed and strategy.post_promotion_analysis:
            steps.append(Step("analyse", service=strategy.active_service))
        steps += [Step("wait", wait=strategy.scale_down_delay), Step("retire", part="old")]
        return Plan(BlueGreen.KIND, tuple(steps))
    steps = [Step("deploy"), Step("await"), Step("verify")]
    if analysed:
        steps.append(Step("analyse"))
    return Plan("rolling", tuple(steps))


def strategy_target(environment: Environment) -> dict[str, Any]:
    """The deploy target the activities open: a blue-green or canary environment's names
    its kind (and a blue-green one its Services); a rolling one's is the policy's."""
    strategy, target = environment.strategy, environment.deploy_target
    if isinstance(strategy, Canary):
        return {**target, "kind": Canary.KIND}
    if isinstance(strategy, BlueGreen):
        return {**target, "kind": BlueGreen.KIND, "activeService": strategy.active_service,
                "previewService": strategy.preview_service}
    return target
