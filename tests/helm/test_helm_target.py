"""The `helm` target kind through the deploy activities (run by devhost), with Helm's own SDK
against the Kubernetes simulator and the sample chart pushed to the real registry."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import helm_python
import pytest

from sandbox.chart_push import PushedChart, push_chart
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.deploy.evidence import Evidence, Verdict
from shared.policy.helm import HelmTarget, HelmTest, ImageValues
from tests.apphost import run_activities

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "delivery"
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
REPOSITORY = "acr.io/delivery"
CONNECTION = {"name": "qa-cluster", "kubeconfigSecret": "qa-kubeconfig", "aks": None}
SECRETS = {"local": {"environment": "qa"}}


@pytest.fixture(scope="module")
def pushed(registry: LocalRegistry, tls_files: TlsFiles) -> PushedChart:
    host = registry.endpoint.split("://", 1)[1]
    return push_chart(CHART, f"oci://{host}/helm", tls_files.ca, version="1.0.0")


@pytest.fixture
def setup(kube: KubeSimulator, registry: LocalRegistry, tls_files: TlsFiles,
          pushed: PushedChart, monkeypatch: pytest.MonkeyPatch) -> Setup:
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig(ADMIN_TOKEN))
    monkeypatch.setenv("SECRETS__QA__GREETING", "s3cret-greeting")
    return Setup(kube, registry, tls_files, pushed)


class Setup:
    """Requests for the `helm` deploy activities of one release in namespace qa."""

    def __init__(self, kube: KubeSimulator, registry: LocalRegistry, tls: TlsFiles,
                 pushed: PushedChart) -> None:
        self.kube = kube
        self.registry = {"url": registry.endpoint, "auth": "anonymous",
                         "caBundle": str(tls.ca)}
        self.source = pushed.reference.rsplit(":", 1)[0]
        self.chart = {"source": self.source, "name": "delivery", "version": "1.0.0",
                      "digest": pushed.digest}

    def target(self, **fields: Any) -> dict[str, Any]:
        return HelmTarget(cluster="qa-cluster", namespace="qa", release="delivery",
                          chart=self.source, chart_registry=self.registry, **fields).to_dict()

    def request(self, target: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        return {"target": target or self.target(), "connection": CONNECTION,
                "secrets": SECRETS, **fields}

    def deploy(self, digest: str, release_id: str, timeout: int = 20,
               target: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request(target, image=f"{REPOSITORY}@{digest}",
                            changeCause=f"release {release_id}", releaseId=release_id,
                            chart=self.chart, timeoutSeconds=timeout)

    def watch(self, wait: float = 15, **fields: Any) -> dict[str, Any]:
        return self.request(deadline=later(60), maxWaitSeconds=wait, **fields)

    def image(self) -> str:
        deployment = self.kube.get("deployments", "qa", "delivery")
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    def history(self) -> list[tuple[int, str]]:
        return [(r.revision, r.status) for r in self.kube.helm_releases("qa", "delivery")]


def run(tmp_path: Path, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    return run_activities(tmp_path / "devhost", *calls)


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_install_upgrade_and_roll_back_to_the_last_good_revision(
        tmp_path: Path, setup: Setup) -> None:
    empty, first, ready = run(
        tmp_path,
        ("snapshot_deployment", setup.request()),
        ("deploy_image", setup.deploy(D1, "r-1")),
        ("await_rollout", setup.watch()))
    assert (empty["revision"], empty["image"]) == (0, None)
    assert (first["revision"], ready["state"]) == (1, "complete")
    assert setup.image() == f"{REPOSITORY}@{D1}"

    second, ready, snapshot = run(
        tmp_path,
        ("deploy_image", setup.deploy(D2, "r-2")),
        ("await_rollout", setup.watch()),
        ("snapshot_deployment", setup.request(goodReleaseId="r-1")))
    assert (second["revision"], ready["state"]) == (2, "complete")
    assert snapshot["revision"] == 1 and snapshot["running"] == 2
    assert snapshot["image"] == f"{REPOSITORY}@{D1}"
    assert snapshot["annotations"]["release-workflow.io/release-id"] == "r-1"

    restored, after = run(
        tmp_path,
        ("rollback_deployment", setup.request(snapshot=snapshot, deadline=later(60),
                                              maxWaitSeconds=15)),
        ("snapshot_deployment", setup.request()))
    assert restored["rollout"]["state"] == "complete" and restored["rolledBackTo"] == 1
    assert setup.image() == f"{REPOSITORY}@{D1}"
    assert setup.history() == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    assert after["revision"] == 3


def test_a_crash_is_reported_early_and_rolled_back_once_helm_returned(
        tmp_path: Path, setup: Setup) -> None:
    run(tmp_path, ("deploy_image", setup.deploy(D1, "r-1")), ("await_rollout", setup.watch()))
    setup.kube.set_image_behaviour(D2, "crash")
    started = time.monotonic()
    deployed, early = run(tmp_path, ("deploy_image", setup.deploy(D2, "r-2", timeout=8)),
                          ("await_rollout", setup.watch(wait=3)))
    assert deployed["revision"] == 2
    assert early["state"] == "failed" and early["settled"] is False
    assert early["reason"] == "CrashLoopBackOff" and "deployment delivery" in early["message"]
    assert time.monotonic() - started < 8  # before Helm's own timeout
    assert setup.history()[-1] == (2, "pending-upgrade")

    waiting, settled = run(tmp_path, ("await_rollout", setup.watch(wait=0.5, settling=True)),
                           ("await_rollout", setup.watch(wait=20, settling=True)))
    assert (waiting["state"], waiting["settled"], waiting["reason"]) == (
        "failed", False, "HelmStillWaiting")
    assert settled["state"] == "failed" and "settled" not in settled
    assert "helm revision 2 failed" in settled["message"]
    assert setup.history() == [(1, "deployed"), (2, "failed")]

    snapshot, restored = run(
        tmp_path,
        ("snapshot_deployment", setup.request(goodReleaseId="r-1")),
        ("rollback_deployment", {**setup.request(deadline=later(60), maxWaitSeconds=15),
                                 "snapshot": {"revision": 1}}))
    assert snapshot["revision"] == 1
    assert restored["rollout"]["state"] == "complete"
    assert setup.history() == [(1, "superseded"), (2, "failed"), (3, "deployed")]
    assert setup.image() == f"{REPOSITORY}@{D1}"


def test_a_retried_deploy_starts_nothing_new(tmp_path: Path, setup: Setup) -> None:
    first, again, ready = run(tmp_path, ("deploy_image", setup.deploy(D1, "r-1")),
                              ("deploy_image", setup.deploy(D1, "r-1")),
                              ("await_rollout", setup.watch()))
    assert first["revision"] == again["revision"] == 1 and ready["state"] == "complete"
    assert setup.history() == [(1, "deployed")]


@pytest.mark.parametrize(("fields", "message"), [
    ({"values": {"tests": None}}, "does not render with the release.s values: .*nil pointer"),
    ({"image_values": ImageValues("image.repository", "image.tag")},
     "chart delivery 1.0.0 does not render with the release's values: .*image.digest is set"),
    ({"image_values": ImageValues("image.repository", "image.tag"),
      "values": {"image": {"digest": "sha256:" + "9" * 64}}},
     "does not use the value image.tag: the image would not be deployed"),
])
def test_values_the_chart_cannot_take_fail_before_the_cluster_is_touched(
        tmp_path: Path, setup: Setup, fields: dict[str, Any], message: str) -> None:
    before = len(setup.kube.requests())
    (failure,) = run(tmp_path, ("deploy_image", setup.deploy(
        D1, "r-1", target=setup.target(**fields))))
    assert isinstance(failure, Exception) and re.search(message, str(failure))
    assert "[permanent]" in str(failure)
    writes = [r for r in setup.kube.requests()[before:] if r[0] not in ("GET",)]
    assert writes == []
    assert setup.history() == []


def test_a_secret_value_reaches_the_chart_but_no_answer(tmp_path: Path, setup: Setup) -> None:
    target = setup.target(values={"replicaCount": 1},
                          secret_values={"extra.greeting": "greeting"})
    deployed, ready, snapshot = run(
        tmp_path, ("deploy_image", setup.deploy(D1, "r-1", target=target)),
        ("await_rollout", setup.watch()), ("snapshot_deployment", setup.request(target)))
    assert ready["state"] == "complete"
    assert "s3cret-greeting" not in json.dumps([deployed, ready, snapshot])
    with helm_python.Config(kubeconfig_content=setup.kube.kubeconfig(ADMIN_TOKEN, "qa"),
                            namespace="qa", qps=50, burst_limit=100) as helm:
        config = helm.get_values("delivery", revision=1)
    assert config["extra"] == {"greeting": "s3cret-greeting"}  # Helm keeps values, as ever
    assert config["replicaCount"] == 1


def test_helm_test_is_the_acceptance_evidence_with_the_failing_log_tail(
        tmp_path: Path, setup: Setup) -> None:
    target = setup.target(test=HelmTest(True, timedelta(seconds=20)))
    verify = setup.request(target, checks=[])
    passed, = run(tmp_path, ("deploy_image", setup.deploy(D1, "r-1", target=target)),
                  ("await_rollout", setup.watch()), ("verify_release", verify))[2:]
    evidence = Evidence.from_dict(passed)
    assert (evidence.kind, evidence.verdict) == ("helmTest", Verdict.PASSED)
    assert evidence.summary == "helm test: 1 test hook succeeded (delivery-test-health)"
    assert "test passed" in evidence.measurements[0].details["logTail"]

    setup.kube.set_image_behaviour("busybox", "test-fail")
    (failed,) = run(tmp_path, ("verify_release", verify))
    evidence = Evidence.from_dict(failed)
    assert evidence.verdict is Verdict.FAILED
    assert evidence.summary.startswith("helm test: ")
    assert evidence.summary.endswith("log: test failed")
    assert "expected 200, got 503" in evidence.measurements[0].details["logTail"]
    assert evidence.failure() == f"verification failed: {evidence.summary}"
