"""`python -m sandbox push` against a running stack: it pushes the chart at the version, then the
image; the version becomes a release that passes QA (a Helm release, `helm test`, an analysis
of its error rate in the stack's Prometheus) and waits at the approval gate with personal
links; Prometheus scrapes the pods' stand-ins; `--crash-in` makes that version crash there,
`--errors 0.5` makes QA's analysis roll it back; bad input and a missing stack change
nothing. The second service, `web`, runs on the Deployments and Services the stack made, with
traffic through each Service its analyses measure (its releases: tests/e2e/test_stack_demo.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.sample_chart import manifest_digest
from sandbox.stack import Stack, StackFacts
from shared.ledger import Ledger
from tests.sandbox.stack_helpers import ANY_PORT, REPO, get_json, python_env, wait_until

RELEASE_SECONDS = 120


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    cards: list[str] = []
    with Stack(tmp_path_factory.mktemp("stack"), ANY_PORT, print_card=cards.append) as running:
        running.cards = cards
        yield running


def push(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "push", *args, "--data-dir", str(data_dir)],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=120)


def release(facts: StackFacts, release_id: str) -> dict[str, Any] | None:
    status, body = get_json(facts.release_url(release_id))
    return body if status == 200 else None


def custom(view: dict[str, Any] | None) -> dict[str, Any]:
    return ((view or {}).get("durable") or {}).get("customStatus") or {}


def released_id(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("release "))
    return line.split()[1].rstrip(":")


@pytest.mark.timeout(300)
def test_a_pushed_version_passes_qa_and_waits_for_approval(stack: Stack) -> None:
    facts = stack.facts
    assert facts is not None
    result = push(stack.data_dir, "delivery", "1.0.0")
    release_id = released_id(result)
    assert f"{facts.app_url}/api/releases/{release_id}" in result.stdout
    # The ledger says WaitingForApproval while request_approval still opens the gate (the
    # release does both at once): wait for the gate's links in the status too.
    view = wait_until(lambda: (v := release(facts, release_id))
                      and v["state"] == "WaitingForApproval"
                      and (custom(v).get("waitingFor") or {}).get("approvalLinks") and v,
                      RELEASE_SECONDS, f"{release_id} waiting at the gate")
    waiting = custom(view)["waitingFor"]
    assert custom(view)["step"] == "approval" and waiting["environment"] == "prod"
    assert [link["approver"] for link in waiting["approvalLinks"]] == [
        "release-manager@example.com"]
    assert waiting["approvalLinks"][0]["url"].startswith(
        f"{facts.app_url}/api/releases/{release_id}/approvals/prod?token=")
    digest = pushed_line(result, "pushed delivery:1.0.0 as ").split()[0]
    assert stack_image(stack, "qa") == f"{facts.registry_host}/delivery@{digest}"
    assert stack.kube is not None
    assert [d for d in stack.kube.objects("deployments", "prod")
            if d["metadata"]["name"] == "delivery"] == []  # not yet: Helm installs it
    assert stack.kube.helm_releases("prod") == []
    # The chart at the image's version went first, and QA's Helm release runs it.
    chart = pushed_line(result, f"pushed chart oci://{facts.registry_host}/helm/delivery"
                                ":1.0.0 (").rstrip(")")
    assert manifest_digest(facts.registry_host, Path(facts.ca_file), "helm/delivery",
                           "1.0.0") == chart
    assert result.stdout.index("pushed chart") < result.stdout.index("pushed delivery:")
    assert custom(view)["helm"]["qa"] == {"chart": "delivery", "version": "1.0.0",
                                          "digest": chart, "revision": 1}
    assert [(r.revision, r.status, r.chart_version)
            for r in stack.kube.helm_releases("qa", "delivery")] == [(1, "deployed", "1.0.0")]
    # QA's evidence: `helm test` (its hook Pod passed), then the analysis.
    assert custom(view)["evidence"]["qa"].startswith(
        "helm test: 1 test hook succeeded (delivery-test-health); analysis passed (3"
        " measurements): error-rate: 0 (within x ≤ 0.1)")
    hook = stack.kube.get("pods", "qa", "delivery-test-health")
    assert hook["status"]["phase"] == "Succeeded"
    cards = "\n".join(stack.cards)
    assert "[teams]   Version: 1.0.0" in cards and "Review as release-manager@example.com" \
        in cards


@pytest.mark.timeout(300)
def test_crash_in_makes_that_version_fail_there_and_roll_back(stack: Stack) -> None:
    facts = stack.facts
    assert facts is not None
    before = stack_image(stack, "qa")
    result = push(stack.data_dir, "delivery", "2.0.0", "--crash-in", "qa")
    assert "crashes in qa" in result.stdout
    release_id = released_id(result)
    view = wait_until(lambda: (v := release(facts, release_id))
                      and v["state"] not in ("Running", None) and v, RELEASE_SECONDS,
                      f"{release_id} finished")
    assert view["state"] == "RolledBack", view
    assert "CrashLoopBackOff" in view["reason"]
    assert stack_image(stack, "qa") == before


@pytest.mark.timeout(120)
def test_prometheus_scrapes_the_stand_ins_of_the_delivery_pods(stack: Stack) -> None:
    """Each ready `delivery` pod in QA (released by the first test) is a Prometheus target,
    and the stack's steady traffic through the Service shows in its request counters."""
    kube, prometheus = stack.kube, stack.prometheus
    assert kube is not None and prometheus is not None and stack.facts is not None
    assert stack.facts.prometheus_url == prometheus.url
    pods = {standin.pod for standin in kube.standins() if standin.namespace == "qa"
            and standin.labels.get("app.kubernetes.io/name") == "delivery"}  # not web's
    assert len(pods) == 2 and all(pod.startswith("delivery-") for pod in pods)

    def counted(result: list[dict[str, Any]]) -> bool:
        return {series["metric"]["pod"] for series in result
                if float(series["value"][1]) > 0} == pods

    result = prometheus.wait_for('http_requests_total{namespace="qa",code="200",'
                                 'pod=~"delivery-.*"}', 30, until=counted)
    assert {series["metric"]["app_kubernetes_io_name"] for series in result} == {"delivery"}
    assert kube.traffic_sent("qa", "delivery").get("200", 0) > 0


@pytest.mark.timeout(120)
def test_errors_in_qa_are_rolled_back_by_the_analysis(stack: Stack) -> None:
    """A version answering half its requests with 500 fails QA's error-rate analysis (the
    evidence names the metric) and Helm rolls QA back to the version before."""
    facts = stack.facts
    assert facts is not None and stack.kube is not None
    before = stack_image(stack, "qa")
    started = time.monotonic()
    result = push(stack.data_dir, "delivery", "2.1.0", "--errors", "0.5")
    release_id = released_id(result)
    view = wait_until(lambda: (v := release(facts, release_id))
                      and v["state"] not in ("Running", None) and v, 90,
                      f"{release_id} finished")
    print(f"push to rollback: {time.monotonic() - started:.1f} s")
    assert view["state"] == "RolledBack", view
    assert view["reason"].startswith("analysis failed: analysis ")
    assert "error-rate: 0.5" in view["reason"]
    failed = [measurement for shown in view["analysis"] if shown["environment"] == "qa"
              for measurement in shown["measurements"] if measurement["verdict"] == "failed"]
    assert failed and {m["name"] for m in failed} == {"error-rate"}
    assert all(m["value"] > 0.1 for m in failed)
    assert stack_image(stack, "qa") == before
    newest = stack.kube.helm_releases("qa", "delivery")[-1]
    assert (newest.status, newest.chart_version) == ("deployed", "1.0.0")


@pytest.mark.timeout(120)
def test_web_runs_on_plain_deployments_with_traffic_through_every_measured_service(
        stack: Stack) -> None:
    """QA's 4 and production's 2 `web` pods are ready and scraped; traffic flows through
    QA's `web` and production's `web` and `web-preview`, and the control endpoint names
    each Service's proxy, whose `/version` says which pod answered."""
    kube, prometheus, facts = stack.kube, stack.prometheus, stack.facts
    assert kube is not None and prometheus is not None and facts is not None
    assert facts.services["web"] == {"repository": "web", "environments": ["qa", "prod"]}
    for namespace, replicas in (("qa", 4), ("prod", 2)):
        wait_until(lambda ns=namespace, n=replicas: kube.get("deployments", ns, "web")[
            "status"].get("readyReplicas") == n, 30, f"{replicas} web pods ready in {namespace}")
    for namespace, name in (("qa", "web"), ("prod", "web"), ("prod", "web-preview")):
        wait_until(lambda ns=namespace, n=name: kube.traffic_sent(ns, n).get("200", 0) > 0, 30,
                   f"traffic through {namespace}/{name}")
        status, proxy = get_json(f"{facts.control_url}/services/{namespace}/{name}")
        assert status == 200, proxy
        status, answer = get_json(f"{proxy['url']}/version")
        assert status == 200 and answer["namespace"] == namespace
        assert answer["pod"].startswith("web-") and answer["digest"] == stack.web.digest
    assert get_json(f"{facts.control_url}/services/prod/nothing") == (
        404, {"error": "no service prod/nothing"})
    azurite = stack._azurite  # noqa: SLF001
    assert azurite is not None
    first = [(e.outcome, e.reason) for e in
             Ledger.from_connection_string(azurite.connection_string).events("web")
             if e.tag == "0.9.0"]  # the stack's initial image starts no release
    assert first == [("ignored", "version 0.9.0 is outside >=1.0.0")], first
    prod_pods = {s.pod for s in kube.standins() if s.namespace == "prod"
                 and s.pod.startswith("web-")}
    assert len(prod_pods) == 2
    prometheus.wait_for('http_requests_total{namespace="prod",code="200"}', 30,
                        until=lambda result: {series["metric"]["pod"] for series in result
                                              if float(series["value"][1]) > 0} >= prod_pods)


def test_bad_input_is_refused_and_nothing_is_pushed(stack: Stack) -> None:
    for args, message in [(("billing", "1.0.0"), "unknown service 'billing'"),
                          (("delivery", "1.0.0/x"), "is not a valid image tag"),
                          (("delivery", "1.0.3", "--crash-in", "staging"), "runs in qa, prod"),
                          (("web", "1.0.3", "--crash-in", "staging"), "web runs in qa, prod")]:
        result = push(stack.data_dir, *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (stack.data_dir / "images" / "delivery-1.0.3").exists()
    assert not (stack.data_dir / "images" / "web-1.0.3").exists()


def test_without_a_running_stack_push_says_how_to_start_one(tmp_path: Path) -> None:
    result = push(tmp_path, "delivery", "1.0.0")
    assert result.returncode == 2
    assert f"no stack is running from {tmp_path}: start one with `make run`" in result.stderr


def pushed_line(result: subprocess.CompletedProcess[str], start: str) -> str:
    """The rest of the output line that starts with `start`."""
    line = next(line for line in result.stdout.splitlines() if line.startswith(start))
    return line.removeprefix(start)


def stack_image(stack: Stack, namespace: str) -> str:
    kube = stack.kube
    assert kube is not None
    deployment = kube.get("deployments", namespace, "delivery")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
