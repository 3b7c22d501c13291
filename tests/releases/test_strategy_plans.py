"""Strategies as plans of steps (pure): what each runs, and the target kind it opens."""

from __future__ import annotations

from datetime import timedelta

from sandbox.policy_text import SERVICE, qa_then_prod
from shared.policy.loader import parse_policy
from shared.policy.model import Environment
from shared.releases.strategies import Step, plan_of, strategy_target

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
    assert strategy_target(prod("")) == prod("").deploy_target  # no kind: as before


def test_a_canary_shifts_pods_step_by_step_with_analysis_between() -> None:
    environment = prod(ANALYSIS + "        strategy: {canary: {replicas: 10, steps:"
                                  " [{weight: 10}, {pause: 1m}, {weight: 50}]}}\n")
    plan = plan_of(environment)
    assert actions(plan.steps) == ["shift", "await", "verify", "analyse", "wait", "shift",
                                   "await", "analyse", "promote", "await", "retire"]
    shifts = [s for s in plan.steps if s.action == "shift"]
    assert [(s.canary_pods, s.stable_pods) for s in shifts] == [(1, 9), (5, 5)]
    assert shifts[0].describe() == "canary 1 of 10 pods"
    assert plan.steps[4].wait == timedelta(minutes=1)
    assert [s.part for s in plan.steps if s.action in ("await", "retire")] == [
        "canary", "canary", "stable", "canary"]
    assert strategy_target(environment) == {**environment.deploy_target, "kind": "canary"}


def test_blue_green_previews_analyses_switches_and_retires_the_old_slot() -> None:
    environment = prod(ANALYSIS + "        strategy: {blueGreen: {previewService:"
                                  " delivery-preview, activeService: delivery,"
                                  " scaleDownDelay: 1m, postPromotionAnalysis: true}}\n")
    plan = plan_of(environment)
    assert actions(plan.steps) == ["deploy", "await", "verify", "preview", "analyse",
                                   "switch", "analyse", "wait", "retire"]
    assert [s.service for s in plan.steps if s.action == "analyse"] == [
        "delivery-preview", "delivery"]
    assert plan.steps[5].describe() == "delivery to the new slot"
    assert plan.steps[7].wait == timedelta(minutes=1) and plan.steps[8].part == "old"
    assert strategy_target(environment) == {
        **environment.deploy_target, "kind": "blueGreen", "activeService": "delivery",
        "previewService": "delivery-preview"}
