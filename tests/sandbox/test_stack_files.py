"""The local stack's generated policy and settings, its data directory and port rules, and
what survives a restart (no parts beyond Azurite and the registry for the quick ones)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox.chart_push import ChartPushFailed
from sandbox.kube.server import KubeSimulator
from sandbox.push import push_version
from sandbox.sample_chart import chart_version, manifest_digest, own_version, publish_chart
from sandbox.stack import (
    FACTS_FILE,
    MARKER_FILE,
    Ports,
    Stack,
    StackError,
    StackFacts,
    remove_unmanaged_deployments,
    running_stack,
    wipe,
)
from sandbox.stack_policy import WEB_REPLICAS, Wiring, app_settings, image_pattern, local_policy
from sandbox.stack_web import INITIAL_VERSION
from sandbox.tls import TlsFiles
from shared.policy import parse_policy
from shared.policy.analysis import PrometheusProvider
from shared.policy.strategy import BlueGreen, Canary
from tests.sandbox.stack_helpers import ANY_PORT, get_json, wait_until

PROMETHEUS = "http://127.0.0.1:9999"


def test_the_generated_policy_gates_prod_with_a_short_deadline_and_named_approvers(
        tmp_path: Path) -> None:
    policy = parse_policy(local_policy("https://127.0.0.1:5999", tmp_path / "ca.pem", PROMETHEUS))
    service = policy.services["delivery"]
    qa, prod = service.environments
    assert (qa.name, qa.gate) == ("qa", None)
    assert prod.name == "prod" and prod.gate is not None
    assert prod.gate.users == ("release-manager@example.com",)
    assert prod.gate.deadline == timedelta(hours=1)
    assert prod.gate.teams_webhook_secret == "teams-webhook-url"
    assert prod.promotion is not None and prod.promotion.namespace == "prod/"


def test_the_generated_policy_releases_the_sample_chart_with_helm(tmp_path: Path) -> None:
    """QA and production are Helm releases of the chart at the image's version, QA with
    `helm test`, production's chart from prod/ where promotion copies it."""
    policy = parse_policy(local_policy("https://127.0.0.1:5999", tmp_path / "ca.pem", PROMETHEUS))
    qa, prod = policy.services["delivery"].environments
    assert qa.helm is not None and prod.helm is not None
    assert (qa.helm.chart, qa.helm.release, qa.helm.test.enabled) == (
        "oci://127.0.0.1:5999/helm/delivery", "delivery", True)
    assert (prod.helm.chart, prod.helm.release, prod.helm.test.enabled) == (
        "oci://127.0.0.1:5999/prod/helm/delivery", "delivery", False)
    assert qa.helm.chart_version("1.0.1") == prod.helm.chart_version("1.0.1") == "1.0.1"


def test_the_generated_policy_measures_qa_error_rate_in_the_stacks_prometheus(
        tmp_path: Path) -> None:
    """QA's analysis: every 5 s, 3 times, the new version's share of 500s from the stack's
    Prometheus must stay at most 0.1; production has none."""
    policy = parse_policy(local_policy("https://127.0.0.1:5999", tmp_path / "ca.pem",
                                       PROMETHEUS))
    qa, prod = policy.services["delivery"].environments
    assert prod.analysis is None
    analysis = qa.analysis
    assert analysis is not None
    assert (analysis.interval, analysis.measurements, analysis.failure_limit) == (
        timedelta(seconds=5), 3, 1)
    [metric] = analysis.metrics
    assert metric.name == "error-rate" and metric.threshold.to_dict() == {"min": None,
                                                                          "max": 0.1}
    provider = metric.provider
    assert isinstance(provider, PrometheusProvider)
    assert (provider.url, provider.auth) == (PROMETHEUS, "none")
    query = provider.query
    assert 'code="500"' in query and 'digest="${digest}"' in query
    assert 'pod=~"${canary}-.*"' in query and 'namespace="qa"' in query


def test_the_generated_policy_releases_web_as_a_canary_in_qa_and_blue_green_in_prod(
        tmp_path: Path) -> None:
    """`web` on plain Deployments passes the checker: a canary of 4 pods at 25 % then 50 % in
    QA, blue-green in production (Services web and web-preview, analysis before and after
    the switch, the old slot kept 15 s); each environment measures delivery's error rate in
    its own namespace; the same gate as delivery's; only versions from 1.0.0 release."""
    policy = parse_policy(local_policy("https://127.0.0.1:5999", tmp_path / "ca.pem",
                                       PROMETHEUS))
    web, delivery = policy.services["web"], policy.services["delivery"]
    qa, prod = web.environments
    assert qa.deploy_target == {"cluster": "sandbox", "namespace": "qa", "deployment": "web",
                                "container": "app"}
    assert prod.deploy_target["deployment"] == "web" and prod.helm is None
    assert qa.strategy == Canary.from_dict({"replicas": 4, "steps": [
        {"weight": 25}, {"weight": 50}]}, "qa")
    assert isinstance(prod.strategy, BlueGreen)
    assert (prod.strategy.active_service, prod.strategy.preview_service) == ("web",
                                                                           "web-preview")
    assert prod.strategy.pre_promotion_analysis and prod.strategy.post_promotion_analysis
    assert prod.strategy.scale_down_delay == timedelta(seconds=15)
    delivery_qa = delivery.environments[0].analysis
    assert qa.analysis == delivery_qa  # the same analysis, not a copy that drifts
    assert prod.analysis is not None and delivery_qa is not None
    in_prod = str(prod.analysis.to_dict())
    assert 'namespace="prod"' in in_prod and 'namespace="qa"' not in in_prod
    assert in_prod == str(delivery_qa.to_dict()).replace('namespace="qa"', 'namespace="prod"')
    assert prod.gate == delivery.environments[1].gate
    assert prod.promotion is not None and prod.promotion.namespace == "prod/"
    assert (qa.rollout_timeout, prod.rollout_timeout) == (timedelta(seconds=30),) * 2
    assert web.tags.semver is not None and "0.9.0" not in str(web.tags.to_dict())


def test_settings_hold_every_secret_the_app_reads_and_keep_keys_per_data_dir(
        tmp_path: Path) -> None:
    wiring = Wiring(app_url="http://127.0.0.1:7999", registry_url="https://127.0.0.1:5999",
                    ca_file=tmp_path / "ca.pem", storage="UseDevelopmentStorage=true",
                    kubeconfigs={"qa": "qa-config", "prod": "prod-config"},
                    teams_url="http://127.0.0.1:8999/hook")
    first = app_settings(tmp_path, tmp_path / "policy.yaml", wiring)
    again = app_settings(tmp_path, tmp_path / "policy.yaml", wiring)
    assert first == again  # the signing key and webhook token are made once per data dir
    assert len(first["APPROVAL_SIGNING_KEY"]) >= 32
    assert first["APPROVAL_BASE_URL"] == "http://127.0.0.1:7999"
    assert first["SECRETS__PROD__KUBECONFIG"] == "prod-config"
    assert first["SECRETS__PROD__TEAMS_WEBHOOK_URL"] == "http://127.0.0.1:8999/hook"
    assert first["RECONCILE_SCHEDULE"] == "0 */5 * * * *"  # the app does not start without it
    assert (tmp_path / "approval-signing-key").stat().st_mode & 0o777 == 0o600
    other = app_settings(tmp_path / "other", tmp_path / "policy.yaml", wiring)
    assert other["APPROVAL_SIGNING_KEY"] != first["APPROVAL_SIGNING_KEY"]


def test_a_crash_rule_for_one_environment_never_matches_the_other() -> None:
    digest = "sha256:" + "a" * 64
    qa, prod = (image_pattern("127.0.0.1:5999", env, digest) for env in ("qa", "prod"))
    web = image_pattern("127.0.0.1:5999", "prod", digest, "web")
    assert web == f"127.0.0.1:5999/prod/web@{digest}" and prod not in web
    assert qa == f"127.0.0.1:5999/delivery@{digest}"
    assert prod == f"127.0.0.1:5999/prod/delivery@{digest}"
    assert qa not in prod and prod not in qa


def test_the_chart_version_is_the_image_version_and_a_silent_registry_fails_in_one_line(
        tmp_path: Path, tls_files: TlsFiles) -> None:
    assert [chart_version(tag) for tag in ("1.0.1", "v2.0.0", "latest", "1.0")] == [
        "1.0.1", "2.0.0", None, None]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{closed.getsockname()[1]}"
    with pytest.raises(ChartPushFailed, match=f"^registry {host} does not answer: ") as error:
        publish_chart(host, tls_files.ca, "1.0.1")
    assert "\n" not in str(error.value)


def test_wipe_refuses_a_folder_that_is_not_a_stacks(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StackError, match="does not look like a stack's data directory"):
        wipe(tmp_path)
    assert (tmp_path / "notes.txt").exists()
    (tmp_path / MARKER_FILE).touch()
    wipe(tmp_path)
    assert not tmp_path.exists()


def test_a_configured_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} \\(blob\\) is in use"):
            Stack(tmp_path, Ports(blob=port)).start()
    assert not (tmp_path / "stack.json").exists()


@pytest.mark.timeout(400)
def test_a_restart_keeps_releases_deployments_and_crash_rules(tmp_path: Path) -> None:
    """Also: the start pushes the sample chart (once), no Deployment waits for Helm, and
    Helm's history in the cluster is the same after the restart. `web`'s first image is
    pushed (as `web` and `prod/web`) and its objects made by the first start only."""
    with Stack(tmp_path, ANY_PORT) as stack:
        assert stack.facts is not None and stack.kube is not None
        chart = stack.chart
        assert chart is not None and chart.pushed and chart.version == own_version()
        ca = Path(stack.facts.ca_file)
        assert manifest_digest(stack.facts.registry_host, ca, "helm/delivery",
                               own_version()) == chart.digest
        assert [d for d in stack.kube.objects("deployments")
                if d["metadata"]["name"] == "delivery"] == []  # Helm installs them
        web = stack.web
        assert web is not None and web.pushed == ("web:0.9.0", "prod/web:0.9.0")
        assert set(web.created) == {
            "qa/deployment/web", "qa/service/web", "prod/deployment/web", "prod/service/web",
            "prod/service/web-preview"}
        for repository, namespace in (("web", "qa"), ("prod/web", "prod")):
            assert manifest_digest(stack.facts.registry_host, ca, repository,
                                   INITIAL_VERSION) == web.digest
            deployment = stack.kube.get("deployments", namespace, "web")
            assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == \
                f"{stack.facts.registry_host}/{repository}@{web.digest}"
            assert deployment["spec"]["replicas"] == WEB_REPLICAS[namespace]
        assert {(d["metadata"]["namespace"], d["metadata"]["name"])
                for d in stack.kube.objects("deployments")} == {("qa", "web"), ("prod", "web")}
        with pytest.raises(StackError, match="a stack already runs from"):
            Stack(tmp_path, ANY_PORT).start()
        pushed = push_version(stack.facts, "delivery", "1.0.0")
        # One at a time: two releases deploying QA at once may finish in either order.
        wait_until(lambda: (get_json(stack.facts.release_url(pushed.release_id))[1] or {})
                   .get("state") == "WaitingForApproval", 120, "1.0.0 at the gate")
        crashing = push_version(stack.facts, "delivery", "1.1.0", crash_in="prod")
        qa_image = f"{stack.facts.registry_host}/delivery@{crashing.digest}"
        wait_until(lambda: _image(stack, "qa") == qa_image, 120, "QA runs 1.1.0")
        history = wait_until(lambda: (h := _history(stack, "qa"))[-1:] == [
            (2, "deployed", "1.1.0")] and h, 120, "Helm recorded 1.1.0 in QA")
        assert history == [(1, "superseded", "1.0.0"), (2, "deployed", "1.1.0")]
    with Stack(tmp_path, ANY_PORT) as again:
        assert again.facts is not None and again.kube is not None
        assert again.chart is not None and not again.chart.pushed  # there already
        assert again.chart.digest == chart.digest
        assert _history(again, "qa") == history
        assert again.removed == []  # Helm's Deployment stays
        assert again.web is not None and again.web.created == again.web.pushed == ()  # kept
        assert again.web.digest == web.digest
        assert _image(again, "qa") == qa_image
        status, view = get_json(again.facts.release_url(pushed.release_id))
        assert status == 200 and view["service"] == "delivery"
        crash = image_pattern(again.facts.registry_host, "prod", crashing.digest)
        assert again.kube._controller.behaviour(crash) == "crash"  # noqa: SLF001
        assert again.kube._controller.behaviour(qa_image) == "ok"  # noqa: SLF001


def _history(stack: Stack, namespace: str) -> list[tuple[int, str, str]]:
    assert stack.kube is not None
    return [(r.revision, r.status, r.chart_version)
            for r in stack.kube.helm_releases(namespace, "delivery")]


def test_a_deployment_an_older_stack_made_is_removed_and_helms_stay(
        tmp_path: Path, tls_files: TlsFiles) -> None:
    """A data directory of a stack before Helm holds a `delivery` Deployment Helm would not
    adopt: the start removes it (its ReplicaSets and pods with it); Helm's own stays."""
    tokens = {"qa": "qa-token", "prod": "prod-token"}
    with KubeSimulator(tls=tls_files, tokens={"qa-token": {"qa"}, "prod-token": {"prod"}},
                       data_dir=tmp_path) as kube:
        kube.create_deployment("qa", "delivery", "sandbox.example/delivery@sha256:" + "0" * 64)
        kube.create_deployment("prod", "delivery", "127.0.0.1:5999/prod/delivery@sha256:"
                               + "1" * 64, annotations={"meta.helm.sh/release-name": "delivery",
                                                        "meta.helm.sh/release-namespace": "prod"})
        kube.create_deployment("prod", "other", "sandbox.example/other@sha256:" + "2" * 64)
        assert kube.objects("pods", "qa")
    with KubeSimulator(tls=tls_files, tokens={"qa-token": {"qa"}, "prod-token": {"prod"}},
                       data_dir=tmp_path) as kube:
        assert remove_unmanaged_deployments(kube, tokens) == ["qa"]
        assert kube.objects("deployments", "qa") == []
        assert kube.objects("replicasets", "qa") == kube.objects("pods", "qa") == []
        assert {d["metadata"]["name"] for d in kube.objects("deployments", "prod")} == {
            "delivery", "other"}
        assert remove_unmanaged_deployments(kube, tokens) == []


def _image(stack: Stack, namespace: str) -> str:
    assert stack.kube is not None
    deployment = stack.kube.get("deployments", namespace, "delivery")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_killed_stack_not_yet_reaped_is_not_running(tmp_path: Path) -> None:
    """After `kill -9` the stack's process may linger as a zombie: it runs no stack."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
               == "Z", 10, "the child exited and was not reaped")
    try:
        facts = StackFacts(pid=child.pid, data_dir=str(tmp_path), started_at="", app_url="",
                           dashboard_url="", registry_url="", registry_host="", ca_file="",
                           kube_url="", teams_url="", control_url="", azurite_ports=[],
                           policy_file="", webhook_token_file="", control_token_file="",
                           devhost_log="")
        (tmp_path / FACTS_FILE).write_text(facts.to_json())
        assert running_stack(tmp_path) is None
        (tmp_path / FACTS_FILE).write_text(replace(facts, pid=os.getpid()).to_json())
        assert running_stack(tmp_path) is not None
    finally:
        child.wait()
