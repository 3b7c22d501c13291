"""A strategy as a plan of steps (docs/deploy-seam.md): what the orchestrator runs, in
order, each step one bounded activity call or a durable timer, and what undoes the steps
taken when one fails. Pure: the plan of an environment's policy, nothing run here.

- `rolling`: deploy, await readiness, verify, analyse.
- `canary`: per weight step, give the canary its share of the replicas (the stable
  Deployment the rest), await it, analyse; a pause step waits; then promote (the stable
  Deployment takes the new digest, the canary goes) and await. Undo: the canary to zero, the
  stable Deployment back to all replicas, its pod template never touched.
- `blueGreen`: deploy the new slot, await it, analyse it behind the preview Service (if
  asked), switch the active Service's selector, analyse again (if asked), wait the
  scale-down delay, scale the old slot down. Undo: switch back (one patch) when switched,
  then scale the new slot down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from shared.policy.model import Environment
from shared.policy.strategy import BlueGreen, Canary

Action = Literal["deploy", "await", "verify", "analyse", "shift", "wait", "promote",
                 "switch", "scaleDown", "abortCanary", "switchBack", "restore"]


@dataclass(frozen=True)
class Step:
    """One step: its action and what it needs (a weight as pods, a wait, a Service, a slot)."""

    action: Action
    canary_pods: int | None = None
    stable_pods: int | None = None
    wait: timedelta | None = None
    service: str | None = None
    slot: Literal["new", "old"] | None = None
    against: Literal["preview", "active"] | None = None  # where an analysis measures

    def describe(self) -> str:
        """One line for a release's history."""
        if self.action == "shift":
            return f"canary {self.canary_pods} pods, stable {self.stable_pods}"
        if self.action == "wait" and self.wait is not None:
            return f"wait {self.wait}"
        if self.action in ("switch", "switchBack"):
            return f"{self.service} to the {self.slot} slot"
        if self.action == "analyse" and self.against:
            return f"analyse behind the {self.against} Service"
        return self.action


@dataclass(frozen=True)
class Plan:
    """The steps of one environment's deploy and, per step reached, how to undo them."""

    strategy: str
    steps: tuple[Step, ...]

    def undo(self, reached: int) -> tuple[Step, ...]:
        """The steps that undo a failure at step `reached` (0-based): nothing before the
        first change, else what the strategy restores."""
        taken = self.steps[:reached + 1]
        if self.strategy == Canary.KIND:
            if any(s.action == "promote" for s in taken):
                return (Step("restore"),)  # promoted: the stable Deployment's snapshot back
            return (Step("abortCanary"),) if any(s.action == "shift" for s in taken) else ()
        if self.strategy == BlueGreen.KIND:
            switched = [s for s in taken if s.action == "switch"]
            back = (Step("switchBack", service=switched[0].service, slot="old"),) \
                if switched else ()
            started = any(s.action == "deploy" for s in taken)
            return (*back, Step("scaleDown", slot="new")) if started else back
        return (Step("restore"),) if taken else ()  # rolling: the snapshot back


def plan_of(environment: Environment) -> Plan:
    """The plan the environment's strategy and analysis make."""
    strategy, analysed = environment.strategy, environment.analysis is not None
    if isinstance(strategy, Canary):
        steps: list[Step] = []
        for step in strategy.steps:
            if step.pause is not None:
                steps.append(Step("wait", wait=step.pause))
                continue
            assert step.weight is not None
            canary, stable = strategy.split(step.weight)
            steps += [Step("shift", canary_pods=canary, stable_pods=stable), Step("await")]
            if analysed:
                steps.append(Step("analyse"))
        steps += [Step("promote"), Step("await")]
        return Plan(Canary.KIND, tuple(steps))
    if isinstance(strategy, BlueGreen):
        steps = [Step("deploy", slot="new"), Step("await")]
        if analysed and strategy.pre_promotion_analysis:
            steps.append(Step("analyse", against="preview", service=strategy.preview_service))
        steps.append(Step("switch", service=strategy.active_service, slot="new"))
        if analysed and strategy.post_promotion_analysis:
            steps.append(Step("analyse", against="active", service=strategy.active_service))
        steps += [Step("wait", wait=strategy.scale_down_delay),
                  Step("scaleDown", slot="old")]
        return Plan(BlueGreen.KIND, tuple(steps))
    steps = [Step("deploy"), Step("await"), Step("verify")]
    if analysed:
        steps.append(Step("analyse"))
    return Plan("rolling", tuple(steps))
