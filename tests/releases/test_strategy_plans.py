"""Strategies as plans of steps (pure): what each runs, and what undoes a failure."""

from __future__ import annotations

from datetime import timedelta

from sandbox.policy_text import SERVICE, qa_then_prod
from shared.policy.loader import parse_policy
from shared.policy.model import Environment
from shared.releases.strategies import Step, plan_of

ANALYSIS = ("        analysis:\n"
            "          interval: 30s\n"
            "          measurements: 2\n"
            "          metrics:\n"
            "            - name: health\n"
            "              http: {url: \"http://127.0.0.1:9/healthz\"}\n"
            "              threshold: {min: 1}\n")


def prod(extra: str) -> Environment:
    text = qa_then_prod("https://127.0.0.1:5000", "/ca.pem", "delivery", prod_extra=extra)
    return parse_policy(text, "policy.yaml").service(SERVICE).environments[-1]


def actions(steps: tuple[Step, ...]) -> list[str]:
    return [step.action for step in steps]


def test_rolling_deploys_awaits_verifies_and_analyses() -> None:
    plan = plan_of(prod(ANALYSIS))
    assert (plan.strategy, actions(plan.steps)) == (
        "rolling", ["deploy", "await", "verify", "analyse"])
    assert actions(plan_of(prod("")).steps) == ["deploy", "await", "verify"]
    assert actions(plan.undo(0)) == ["restore"]


def test_a_canary_shifts_pods_step_by_step_with_analysis_between() -> None:
    plan = plan_of(prod(ANALYSIS + "        strategy: {canary: {replicas: 10, steps:"
                                   " [{weight: 10}, {pause: 1m}, {weight: 50}]}}\n"))
    assert actions(plan.steps) == ["shift", "await", "analyse", "wait", "shift", "await",
                                   "analyse", "promote", "await"]
    shifts = [s for s in plan.steps if s.action == "shift"]
    assert [(s.canary_pods, s.stable_pods) for s in shifts] == [(1, 9), (5, 5)]
    assert shifts[0].describe() == "canary 1 pods, stable 9"
    assert plan.steps[3].wait == timedelta(minutes=1)
    # an abort leaves the stable Deployment's template alone; after promotion, restore it
    assert actions(plan.undo(2)) == ["abortCanary"]
    assert actions(plan.undo(len(plan.steps) - 1)) == ["restore"]


def test_blue_green_switches_after_the_preview_analysis_and_switches_back_on_failure() -> None:
    plan = plan_of(prod(ANALYSIS + "        strategy: {blueGreen: {previewService:"
                                   " delivery-preview, activeService: delivery,"
                                   " scaleDownDelay: 1m, postPromotionAnalysis: true}}\n"))
    assert actions(plan.steps) == ["deploy", "await", "analyse", "switch", "analyse", "wait",
                                   "scaleDown"]
    assert plan.steps[2].against == "preview" and plan.steps[4].against == "active"
    assert plan.steps[3].describe() == "delivery to the new slot"
    assert actions(plan.undo(2)) == ["scaleDown"]  # not switched yet: the new slot goes
    back = plan.undo(4)
    assert actions(back) == ["switchBack", "scaleDown"]
    assert (back[0].service, back[0].slot) == ("delivery", "old")
