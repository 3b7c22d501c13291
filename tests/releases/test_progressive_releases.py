"""Canary and blue-green releases end to end through devhost, on the simulator with its pod
stand-ins: the analysis measures the Service, whose requests reach the pods its selector
picks, so a canary's share and a selector switch are what the measurements see."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from release_rig import Released, ReleaseStack, outcome

from sandbox.azurite import Azurite
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import SERVICE
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.ledger.evidence import EvidenceBook


@pytest.fixture
def stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry, azurite: Azurite,
          kube_factory: Callable[..., KubeSimulator],
          monkeypatch: pytest.MonkeyPatch) -> ReleaseStack:
    """The release stack on a simulator whose ready pods answer as their image was built,
    with production's Services `delivery` and `delivery-preview` (both `app: delivery`)."""
    kube = kube_factory(standins=True)
    built = ReleaseStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)
    kube.create_service("prod", SERVICE)
    kube.create_service("prod", f"{SERVICE}-preview", {"app": SERVICE})
    return built


def analysis(url: str, measurements: int = 2) -> str:
    """Production's `analysis` (8-space indent): the share of 8 requests through `url` that
    succeed must be at least 0.95, measured every 30 s."""
    return ("        analysis:\n"
            "          interval: 30s\n"
            f"          measurements: {measurements}\n"
            "          metrics:\n"
            "            - name: success\n"
            f"              http: {{url: \"{url}/\", requests: 8, attemptTimeoutSeconds: 2}}\n"
            "              threshold: {min: 0.95}\n")


def answered_by(stack: ReleaseStack, service: str, count: int = 8) -> set[str]:
    """The digests of the pods that answer `count` requests through a production Service."""
    url = stack.kube.service_url("prod", service)
    return {requests.get(f"{url}/version", timeout=5).json()["digest"] for _ in range(count)}


def inputs(event: dict[str, Any]) -> dict[str, Any]:
    """A history event's input (stored as JSON text or as the object)."""
    value = event["Input"]
    return json.loads(value) if isinstance(value, str) else dict(value)


def deployment(stack: ReleaseStack, name: str) -> dict[str, Any]:
    return stack.kube.get("deployments", "prod", name)


def test_a_canary_that_passes_every_step_is_promoted_and_removed(stack: ReleaseStack) -> None:
    url = stack.kube.service_url("prod", SERVICE)
    stack.policy(checks=[], prod_extra=analysis(url) + (
        "        strategy: {canary: {replicas: 4, steps: [{weight: 25}, {pause: 1m},"
        " {weight: 50}]}}\n        rolloutTimeout: 1m\n"))
    good = stack.push("v1.0.0")

    async def scenario(released: Released) -> None:
        release, done = await released.through_gate("v1.0.0", good, seconds=90)
        assert outcome(done) == "Completed", done
        stable = deployment(stack, SERVICE)
        assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == \
            stack.image_in("prod", good)
        assert stable["spec"]["replicas"] == 2  # the pods it had before the canary
        assert [d["metadata"]["name"] for d in stack.kube.objects("deployments", "prod")] \
            == [SERVICE]  # the canary is gone
        evidence = done["customStatus"]["evidence"]["prod"]
        assert evidence.startswith("at canary 1 of 4 pods: analysis passed (2 measurements):"
                                   " success: 1 (within 0.95 ≤ x)"), evidence
        assert "; at canary 2 of 4 pods: analysis passed" in evidence
        assert evidence.endswith(f"promoted: {SERVICE} runs the new version;"
                                 f" {SERVICE}-canary retired")
        assert answered_by(stack, SERVICE) == {good}
        history = released.history(f"{release}:prod")
        steps = [e["Name"] for e in history if e["EventType"] == "TaskScheduled"]
        assert steps.count("shift_canary") == 2 and steps.count("measure_analysis") == 4
        # Each wait for a rollout has the whole rolloutTimeout from when it begins: the
        # plan lasts longer than one (a single deadline failed the promotion's rollout).
        waits = [(datetime.fromisoformat(inputs(e)["deadline"]),
                  datetime.fromisoformat(e["Timestamp"].replace("Z", "+00:00")))
                 for e in history
                 if e["EventType"] == "TaskScheduled" and e["Name"] == "await_rollout"]
        assert len(waits) == 3 and waits[-1][1] - waits[0][1] > timedelta(minutes=2)
        assert all(abs(deadline - at - timedelta(minutes=1)) < timedelta(seconds=1)
                   for deadline, at in waits), waits
        # Every measurement is evidence: the rounds of both steps are kept, numbered on.
        rounds = EvidenceBook.beside(stack.ledger).rounds(release)
        assert [(r.environment, r.round) for r in rounds] == [("prod", n) for n in range(1, 5)]

    stack.serve(scenario)


def test_a_canary_with_a_rising_error_rate_is_aborted_at_its_first_step(
        stack: ReleaseStack) -> None:
    url = stack.kube.service_url("prod", SERVICE)
    stack.policy(checks=[], prod_extra=analysis(url) + (
        "        strategy: {canary: {replicas: 4, weights: [25, 50]}}\n"))
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        stack.policy(checks=[])  # v1.0.0 rolls out plainly
        await released.completed("v1.0.0", good)
        stack.policy(checks=[], prod_extra=analysis(url) + (
            "        strategy: {canary: {replicas: 4, weights: [25, 50]}}\n"))
        stack.kube.set_image_behaviour(bad, "ok", errors=1.0)  # every request fails
        before = deployment(stack, SERVICE)
        release, done = await released.through_gate("v2.0.0", bad, seconds=90)
        assert outcome(done) == "RolledBack", done
        # One pod in four answers 500: 6 of 8 requests pass (fewer if a slow machine makes
        # a request time out); measured at the first step, the canary's.
        reason = done["output"]["reason"]
        passed = re.fullmatch(r"analysis failed: analysis 1/2: success: [0-9.]+ \(outside"
                              r" 0\.95 ≤ x\): ([0-6]) of 8 requests passed \(.*\)"
                              r" \(at canary 1 of 4 pods\)", reason)
        assert passed is not None, reason
        steps = [e["Name"] for e in released.history(f"{release}:prod")
                 if e["EventType"] == "TaskScheduled"]
        assert steps.count("shift_canary") == 1 and "deploy_image" not in steps
        stable = deployment(stack, SERVICE)
        # Stable untouched: the same pod template (no new revision), its pods back.
        assert stable["spec"]["template"] == before["spec"]["template"]
        assert stable["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == \
            before["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        assert stable["spec"]["replicas"] == before["spec"]["replicas"]
        assert deployment(stack, f"{SERVICE}-canary")["spec"]["replicas"] == 0
        assert answered_by(stack, SERVICE) == {good}
        assert stack.ledger.environment_state(SERVICE, "prod").current.digest == good

    stack.serve(scenario)


def blue_green(url: str, post: bool) -> str:
    return analysis(url) + (
        "        strategy:\n"
        "          blueGreen:\n"
        f"            previewService: {SERVICE}-preview\n"
        f"            activeService: {SERVICE}\n"
        "            scaleDownDelay: 2m\n"
        f"            prePromotionAnalysis: {str(not post).lower()}\n"
        f"            postPromotionAnalysis: {str(post).lower()}\n")


def test_blue_green_switches_to_each_new_slot_in_turn(stack: ReleaseStack) -> None:
    preview = stack.kube.service_url("prod", f"{SERVICE}-preview")
    stack.policy(checks=[], prod_extra=blue_green(preview, post=False))
    first, second = stack.push("v1.0.0"), stack.push("v1.1.0")

    async def scenario(released: Released) -> None:
        for digest, slot, old in ((first, f"{SERVICE}-green", SERVICE),
                                  (second, SERVICE, f"{SERVICE}-green")):
            _, done = await released.through_gate(
                "v1.0.0" if digest == first else "v1.1.0", digest, seconds=90)
            assert outcome(done) == "Completed", done
            evidence = done["customStatus"]["evidence"]["prod"]
            assert evidence.startswith(f"{SERVICE}-preview switched to {slot}; behind"
                                       f" {SERVICE}-preview: analysis passed"), evidence
            assert f"; {SERVICE} switched to {slot}; {old} retired" in evidence
            assert answered_by(stack, SERVICE) == {digest}
            assert deployment(stack, old)["spec"]["replicas"] == 0  # after scaleDownDelay
            assert stack.ledger.environment_state(SERVICE, "prod").current.digest == digest

    stack.serve(scenario)


def test_a_failed_post_switch_analysis_switches_back_in_one_patch(stack: ReleaseStack) -> None:
    active = stack.kube.service_url("prod", SERVICE)
    stack.policy(checks=[], prod_extra=blue_green(active, post=True))
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        await released.completed("v1.0.0", good)
        old_slot = f"{SERVICE}-green"
        assert answered_by(stack, SERVICE) == {good}
        stack.kube.set_image_behaviour(bad, "ok", errors=1.0)
        stack.kube.reset_requests()
        release, done = await released.through_gate("v2.0.0", bad, seconds=90)
        assert outcome(done) == "RolledBack", done
        assert done["output"]["reason"] == (
            "analysis failed: analysis 1/2: success: 0 (outside 0.95 ≤ x): 0 of 8 requests"
            f" passed (status 500, expected 200) (behind {SERVICE})")
        assert answered_by(stack, SERVICE) == {good}
        service_patches = [path for method, path in stack.kube.requests()
                           if method == "PATCH" and f"/services/{SERVICE}" in path
                           and "preview" not in path]
        assert len(service_patches) == 2  # the switch, and the one patch back
        assert deployment(stack, SERVICE)["spec"]["replicas"] == 0  # the new slot: down
        assert deployment(stack, old_slot)["spec"]["replicas"] == 2
        assert stack.ledger.environment_state(SERVICE, "prod").current.digest == good

    stack.serve(scenario)


def test_a_manual_rollback_in_a_blue_green_environment_switches_to_the_older_slot(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")  # the sign-in names the operator
    preview = stack.kube.service_url("prod", f"{SERVICE}-preview")
    stack.policy(checks=[], prod_extra=blue_green(preview, post=False))
    first, second = stack.push("v1.0.0"), stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        await released.completed("v1.0.0", first)  # into the green slot
        newer = await released.completed("v2.0.0", second)  # back into the blue one
        assert answered_by(stack, SERVICE) == {second}
        async with aiohttp.ClientSession() as http, http.post(
                f"{released.host.base_url}/api/releases/{newer}/rollback",
                headers={"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"},
                json={"environment": "prod", "reason": "checkout errors"}) as answer:
            started = await answer.json()
            assert answer.status == 202, started
        done = await released.finished(started["id"], seconds=60)
        assert done["output"]["outcome"] == "Completed", done
        assert answered_by(stack, SERVICE) == {first}
        assert deployment(stack, SERVICE)["spec"]["replicas"] == 0  # v2's slot, down
        assert stack.ledger.environment_state(SERVICE, "prod").current.digest == first

    stack.serve(scenario)


def test_a_paused_canary_kept_by_a_person_becomes_the_version_that_serves(
        stack: ReleaseStack) -> None:
    url = stack.kube.service_url("prod", SERVICE)
    canary = analysis(url) + "        strategy: {canary: {replicas: 4, weights: [25, 50]}}\n" \
        "        rollback: {pauseForHuman: true}\n"
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        await released.completed("v1.0.0", good)
        stack.policy(checks=[], prod_extra=canary)
        stack.kube.set_image_behaviour(bad, "ok", errors=1.0)
        release = released.start("v2.0.0", bad)
        await released.at_gate(release)
        released.approve(release)
        await released.until(release, lambda s: ((s.get("customStatus") or {}).get(
            "waitingFor") or {}).get("kind") == "failure", seconds=60)
        assert deployment(stack, f"{SERVICE}-canary")["spec"]["replicas"] == 1  # as it was
        async with aiohttp.ClientSession() as http, http.post(
                f"{released.host.base_url}/api/releases/{release}/resolve",
                json={"environment": "prod", "decision": "keep", "reason": "known noise"},
                headers={"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"}) as answer:
            assert answer.status == 202, await answer.text()
        done = await released.finished(release, seconds=60)
        assert outcome(done) == "Failed", done  # kept: never counted as a good release
        assert "kept in place by" in done["output"]["reason"]
        stable = deployment(stack, SERVICE)
        assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == \
            stack.image_in("prod", bad)
        assert stable["spec"]["replicas"] == 2
        assert [d["metadata"]["name"] for d in stack.kube.objects("deployments", "prod")] \
            == [SERVICE]
        assert answered_by(stack, SERVICE) == {bad}
        state = stack.ledger.environment_state(SERVICE, "prod")
        assert state.current.digest == bad and state.last_good.digest == good

    stack.serve(scenario)
