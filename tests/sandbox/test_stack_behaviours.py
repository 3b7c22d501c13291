"""Image behaviours with errors and latency through the stack's control endpoint and `push`:
the rule reaches the simulator's stand-ins, is kept for a restart, and bad input changes
nothing. Runs the control endpoint, the simulator and the registry without the whole stack."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.kube import KubeSimulator
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.push import PushError, main, push_version
from sandbox.registry import LocalRegistry
from sandbox.stack import StackFacts
from sandbox.stack_control import StackControl

TOKEN = "control-token-for-tests"
DIGEST = "sha256:" + "ab" * 32


def post_rule(control: StackControl, body: Any, token: str = TOKEN) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{control.url}/image-behaviours", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def codes(url: str, count: int) -> Counter[int]:
    seen: Counter[int] = Counter()
    for _ in range(count):
        try:
            with urllib.request.urlopen(url + "/", timeout=10) as answer:
                seen[answer.status] += 1
        except urllib.error.HTTPError as error:
            seen[error.code] += 1
    return seen


def control_for(sim: KubeSimulator, registry_host: str, rules: Path) -> StackControl:
    return StackControl(sim, registry_host, TOKEN, rules, lambda: {"kube": True},
                        services=("delivery", "web")).start()


def test_a_rule_with_errors_reaches_the_stand_ins_and_survives_a_restart(
    kube_factory: Callable[..., KubeSimulator], tmp_path: Path
) -> None:
    rules = tmp_path / "image-behaviours.json"
    sim = kube_factory(standins=True)
    control = control_for(sim, "reg.test:5000", rules)
    try:
        status, rule = post_rule(control, {"service": "delivery", "environment": "qa",
                                           "digest": DIGEST, "behaviour": "ok",
                                           "errors": 0.5, "latency_ms": 20})
    finally:
        control.stop()
    assert status == 200 and rule["errors"] == 0.5 and rule["latency_ms"] == 20
    sim.create_deployment("qa", "delivery", f"reg.test:5000/delivery@{DIGEST}", replicas=1)
    [standin] = sim.standins()
    assert codes(standin.url, 10) == {200: 5, 500: 5}
    # prod runs the digest under prod/: the QA rule leaves it alone
    sim.create_deployment("prod", "delivery", f"reg.test:5000/prod/delivery@{DIGEST}", 1)
    [prod] = [s for s in sim.standins() if s.namespace == "prod"]
    assert codes(prod.url, 6) == {200: 6}

    again = kube_factory(standins=True)  # the stack restarts, the registry has a new port
    restarted = StackControl(again, "reg.test:6000", TOKEN, rules, lambda: {"kube": True})
    assert restarted.apply_saved_rules() == 1
    again.create_deployment("qa", "delivery", f"reg.test:6000/delivery@{DIGEST}", replicas=1)
    [standin] = again.standins()
    assert codes(standin.url, 4) == {200: 2, 500: 2}


def test_a_rule_for_web_matches_webs_image_only_and_an_unknown_service_is_refused(
    kube_factory: Callable[..., KubeSimulator], tmp_path: Path
) -> None:
    kube = kube_factory(standins=True)
    rules = tmp_path / "image-behaviours.json"
    control = control_for(kube, "reg.test:5000", rules)
    try:
        status, rule = post_rule(control, {"service": "web", "environment": "prod",
                                           "digest": DIGEST, "behaviour": "ok", "errors": 1})
        assert status == 200 and rule["pattern"] == f"reg.test:5000/prod/web@{DIGEST}"
        assert post_rule(control, {"service": "billing", "environment": "qa",
                                   "digest": DIGEST}) == (
            400, {"error": "service 'billing' is not one of delivery, web"})
    finally:
        control.stop()
    assert [(r["service"], r["environment"]) for r in json.loads(rules.read_text())] == [
        ("web", "prod")]
    kube.create_deployment("prod", "web", f"reg.test:5000/prod/web@{DIGEST}", replicas=1)
    kube.create_deployment("prod", "delivery", f"reg.test:5000/prod/delivery@{DIGEST}", 1)
    by_pod = {s.pod.rsplit("-", 2)[0]: s.url for s in kube.standins()}
    assert codes(by_pod["web"], 4) == {500: 4} and codes(by_pod["delivery"], 4) == {200: 4}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("errors", 1.5, "errors must be a number from 0 to 1, not 1.5"),
    ("errors", "0.5", "errors must be a number from 0 to 1, not '0.5'"),
    ("errors", True, "errors must be a number from 0 to 1, not True"),
    ("latency_ms", -5, "latency_ms must be a number from 0 to 60000, not -5"),
])
def test_bad_errors_or_latency_is_refused_and_changes_nothing(
    kube: KubeSimulator, tmp_path: Path, field: str, value: Any, message: str
) -> None:
    rules = tmp_path / "image-behaviours.json"
    control = control_for(kube, "reg.test:5000", rules)
    try:
        body = {"environment": "qa", "digest": DIGEST, "behaviour": "crash", field: value}
        assert post_rule(control, body) == (400, {"error": message})
        assert post_rule(control, {"environment": "qa", "digest": DIGEST}, "wrong")[0] == 401
    finally:
        control.stop()
    assert not rules.exists()
    kube.create_deployment("qa", "delivery", f"reg.test:5000/delivery@{DIGEST}", replicas=1)
    assert kube.get("deployments", "qa", "delivery")["status"]["readyReplicas"] == 1


def facts_for(registry: LocalRegistry, control: StackControl, data_dir: Path) -> StackFacts:
    token_file = data_dir / "control-token"
    token_file.write_text(TOKEN)
    return StackFacts(
        pid=0, data_dir=str(data_dir), started_at="", app_url="http://127.0.0.1:9",
        dashboard_url="", registry_url=registry.endpoint, registry_host=registry.host,
        ca_file=str(registry.tls.ca), kube_url="", teams_url="", control_url=control.url,
        azurite_ports=[], policy_file="", webhook_token_file="",
        control_token_file=str(token_file), devhost_log="",
        services={"delivery": {"repository": "behaviours/delivery",
                               "environments": ["qa", "prod"]}})


def test_push_with_errors_and_latency_builds_its_own_image_and_sets_every_environment(
    kube: KubeSimulator, registry: LocalRegistry, tmp_path: Path
) -> None:
    rules = tmp_path / "image-behaviours.json"
    control = control_for(kube, registry.host, rules)
    try:
        facts = facts_for(registry, control, tmp_path)
        healthy = push_version(facts, "delivery", "3.1.0")
        assert not rules.exists()  # a plain build sets no rule
        slow = push_version(facts, "delivery", "3.1.0", crash_in="prod", errors=0.2,
                            latency_ms=300)
    finally:
        control.stop()
    assert slow.digest != healthy.digest  # built differently: another image
    assert slow.behaviour() == " (crashes in prod, errors 0.2, latency 300 ms)"
    saved = {rule["environment"]: rule for rule in json.loads(rules.read_text())}
    assert {env: (r["digest"], r["behaviour"], r["errors"], r["latency_ms"])
            for env, r in saved.items()} == {
        "qa": (slow.digest, "ok", 0.2, 300), "prod": (slow.digest, "crash", 0.2, 300)}
    assert saved["prod"]["pattern"] == f"{registry.host}/prod/delivery@{slow.digest}"


def test_push_refuses_bad_errors_before_building_anything(
    kube: KubeSimulator, registry: LocalRegistry, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    control = control_for(kube, registry.host, tmp_path / "rules.json")
    try:
        facts = facts_for(registry, control, tmp_path)
        for errors, latency, message in [(1.5, 0, "--errors must be a number from 0 to 1"),
                                         (0, -1, "--latency-ms must be a number from 0")]:
            with pytest.raises(PushError, match=message):
                push_version(facts, "delivery", "3.2.0", errors=errors, latency_ms=latency)
    finally:
        control.stop()
    assert not (tmp_path / "images").exists() and not (tmp_path / "rules.json").exists()
    assert main(["delivery", "3.2.0", "--errors", "lots", "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "push: --errors 'lots' is not a number\n"
