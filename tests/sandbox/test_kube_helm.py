"""Helm v4's own Go SDK (helm_python) against the Kubernetes simulator: install, upgrade,
rollback, history, status, values, test hooks, uninstall, failures with their reasons, and the
release records read back without Helm. Timings are printed (`-s`) for bench/helm.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from kubernetes import client

from sandbox.kube import KubeSimulator
from sandbox.kube.pytest_fixtures import QA_TOKEN, api_client

DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64
DIGEST_3 = "sha256:" + "3" * 64
REPOSITORY = "myacr.azurecr.io/web"
TEST_IMAGE = "myacr.azurecr.io/web-acceptance:1"
RELEASE = "web"

CHART_YAML = """\
apiVersion: v2
name: web
version: {version}
appVersion: "{version}"
"""
VALUES_YAML = f"""\
replicas: 2
image:
  repository: {REPOSITORY}
  digest: ""
tests:
  image: {TEST_IMAGE}
greeting: hello
"""
TEMPLATES = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app: {{ .Release.Name }}
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}@{{ .Values.image.digest }}"
          ports:
            - containerPort: 8080
"""
TEST_HOOK = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-acceptance
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
    - name: acceptance
      image: {{ .Values.tests.image | quote }}
"""


def write_chart(folder: Path, version: str = "1.0.0", extra: str | None = None) -> Path:
    """A small chart (ConfigMap, Service, Deployment by digest, a test hook) in `folder`."""
    (folder / "templates").mkdir(parents=True, exist_ok=True)
    (folder / "Chart.yaml").write_text(CHART_YAML.format(version=version))
    (folder / "values.yaml").write_text(VALUES_YAML)
    (folder / "templates" / "app.yaml").write_text(TEMPLATES)
    (folder / "templates" / "tests.yaml").write_text(TEST_HOOK)
    if extra is not None:
        (folder / "templates" / "extra.yaml").write_text(extra)
    return folder


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    return write_chart(tmp_path / "chart")


def config(sim: KubeSimulator, namespace: str = "qa") -> helm.Config:
    """One Config per action, with explicit throttling (see shared/notes/helm.md)."""
    return helm.Config(kubeconfig_content=sim.kubeconfig(QA_TOKEN, namespace),
                       namespace=namespace, qps=100, burst_limit=200)


TIMINGS: dict[str, list[float]] = {}


def timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        return action()
    finally:
        elapsed = time.perf_counter() - started
        TIMINGS.setdefault(label, []).append(elapsed)
        print(f"helm {label}: {elapsed * 1000:.0f} ms")


def upgrade_install(sim: KubeSimulator, chart: Path, digest: str, wait: str = "watcher",
                    timeout: int = 20, **values: Any) -> dict[str, Any]:
    """`helm upgrade --install`: install when the release has no history, else upgrade."""
    all_values = {"image": {"digest": digest}, **values}
    with config(sim) as cfg:
        try:
            cfg.history(RELEASE)
        except helm.HelmNotFoundError:
            return timed("install", lambda: cfg.install(
                chart, RELEASE, all_values, wait=wait, timeout=timeout))
    with config(sim) as cfg:
        return timed("upgrade", lambda: cfg.upgrade(
            chart, RELEASE, all_values, wait=wait, timeout=timeout,
            description=f"deploy {digest[:15]}"))


def history(sim: KubeSimulator) -> list[tuple[int, str]]:
    with config(sim) as cfg:
        return [(entry["revision"], entry["status"]) for entry in cfg.history(RELEASE)]


def recorded(sim: KubeSimulator) -> list[tuple[int, str]]:
    """The history as the release Secrets hold it, decoded without Helm."""
    return [(r.revision, r.status) for r in sim.helm_releases("qa", RELEASE)]


def image_of(sim: KubeSimulator) -> str:
    deployment = sim.get("deployments", "qa", RELEASE)
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.mark.parametrize("wait", ["watcher", "legacy"])
def test_install_upgrade_rollback_and_history(kube: KubeSimulator, chart: Path,
                                              wait: str) -> None:
    installed = upgrade_install(kube, chart, DIGEST_1, wait=wait)
    assert (installed["revision"], installed["status"]) == (1, "deployed")
    assert image_of(kube) == f"{REPOSITORY}@{DIGEST_1}"
    deployment = kube.get("deployments", "qa", RELEASE)
    assert deployment["status"]["readyReplicas"] == 2
    assert kube.get("services", "qa", RELEASE)["spec"]["clusterIP"].startswith("10.0.")
    assert kube.get("configmaps", "qa", "web-config")["data"] == {"greeting": "hello"}

    upgraded = upgrade_install(kube, chart, DIGEST_2, wait=wait, greeting="hi")
    assert (upgraded["revision"], upgraded["status"]) == (2, "deployed")
    assert image_of(kube) == f"{REPOSITORY}@{DIGEST_2}"
    assert kube.get("configmaps", "qa", "web-config")["data"] == {"greeting": "hi"}
    assert history(kube) == recorded(kube) == [(1, "superseded"), (2, "deployed")]
    with config(kube) as cfg:
        assert cfg.get_values(RELEASE) == {"image": {"digest": DIGEST_2}, "greeting": "hi"}
        assert cfg.status(RELEASE)["revision"] == 2

    with config(kube) as cfg:
        timed("rollback", lambda: cfg.rollback(RELEASE, version=1, wait=wait, timeout=20))
    assert image_of(kube) == f"{REPOSITORY}@{DIGEST_1}"
    assert kube.get("configmaps", "qa", "web-config")["data"] == {"greeting": "hello"}
    assert history(kube) == recorded(kube) == [(1, "superseded"), (2, "superseded"),
                                               (3, "deployed")]
    records = kube.helm_releases("qa", RELEASE)
    assert [r.description for r in records] == [
        "Install complete", f"deploy {DIGEST_2[:15]}", "Rollback to 1"]
    assert {(r.chart, r.chart_version) for r in records} == {("web", "1.0.0")}


def waiting_reasons(sim: KubeSimulator) -> set[str]:
    """The waiting reasons of the release's pods, read as product code reads them."""
    with api_client(sim, QA_TOKEN, "qa") as api:
        pods = client.CoreV1Api(api).list_namespaced_pod("qa", label_selector=f"app={RELEASE}")
    return {
        status.state.waiting.reason
        for pod in pods.items for status in pod.status.container_statuses or []
        if status.state is not None and status.state.waiting is not None
    }


@pytest.mark.parametrize(("behaviour", "reason"), [
    ("crash", "CrashLoopBackOff"), ("pull-error", "ImagePullBackOff")])
def test_a_failing_image_fails_the_wait_and_the_pods_say_why_early(
        kube: KubeSimulator, chart: Path, behaviour: str, reason: str) -> None:
    upgrade_install(kube, chart, DIGEST_1)
    kube.set_image_behaviour(DIGEST_2, behaviour)  # type: ignore[arg-type]
    failures: list[helm.HelmError] = []

    def deploy() -> None:
        try:
            upgrade_install(kube, chart, DIGEST_2, timeout=3)
        except helm.HelmError as error:
            failures.append(error)

    started = time.monotonic()
    upgrading = threading.Thread(target=deploy)
    upgrading.start()
    seen: set[str] = set()
    while reason not in seen and time.monotonic() - started < 3:
        seen |= waiting_reasons(kube)
        if "ErrImagePull" in seen:
            kube.advance(6)  # the kubelet backs off after a few seconds of failed pulls
        time.sleep(0.05)
    seen_after = time.monotonic() - started
    upgrading.join(30)
    print(f"{reason} seen after {seen_after * 1000:.0f} ms of a 3 s wait")
    assert reason in seen
    assert upgrading.is_alive() is False and len(failures) == 1
    assert "Deployment/qa/web not ready" in str(failures[0])
    assert history(kube) == recorded(kube) == [(1, "deployed"), (2, "failed")]
    assert kube.helm_releases("qa", RELEASE)[1].description.startswith('Upgrade "web" failed')

    with config(kube) as cfg:
        cfg.rollback(RELEASE, version=1, wait="watcher", timeout=20)
    assert history(kube) == recorded(kube) == [(1, "superseded"), (2, "failed"), (3, "deployed")]
    assert image_of(kube) == f"{REPOSITORY}@{DIGEST_1}"
    assert waiting_reasons(kube) == set()


def test_helm_test_runs_the_hook_pods_to_success_or_failure_with_their_logs(
        kube: KubeSimulator, chart: Path) -> None:
    upgrade_install(kube, chart, DIGEST_1)
    with config(kube) as cfg:
        passed = timed("test", lambda: cfg.test(RELEASE, logs=True, timeout=20))
    assert "test passed" in passed["logs"]
    with api_client(kube, QA_TOKEN, "qa") as api:
        core = client.CoreV1Api(api)
        assert core.read_namespaced_pod("web-acceptance", "qa").status.phase == "Succeeded"
        assert core.read_namespaced_pod_log("web-acceptance", "qa").splitlines()[-1] == (
            "test passed")

    kube.set_image_behaviour(TEST_IMAGE, "test-fail")
    with config(kube) as cfg, pytest.raises(helm.HelmReleaseError) as failed:
        cfg.test(RELEASE, logs=True, timeout=20)
    assert "web-acceptance" in str(failed.value) and "Failed" in str(failed.value)
    with api_client(kube, QA_TOKEN, "qa") as api:
        core = client.CoreV1Api(api)
        pod = core.read_namespaced_pod("web-acceptance", "qa")
        assert pod.status.phase == "Failed"
        assert pod.status.container_statuses[0].state.terminated.exit_code == 1
        log = core.read_namespaced_pod_log("web-acceptance", "qa", tail_lines=2)
    assert log == "GET /healthz: expected 200, got 503\ntest failed\n"
    assert history(kube) == [(1, "deployed")]  # a failed test does not change the release


def test_uninstall_removes_the_objects_and_the_records(kube: KubeSimulator, chart: Path) -> None:
    upgrade_install(kube, chart, DIGEST_1)
    upgrade_install(kube, chart, DIGEST_2)
    with config(kube) as cfg:
        timed("uninstall", lambda: cfg.uninstall(RELEASE, wait="watcher", timeout=20))
    for resource in ("deployments", "replicasets", "pods", "services", "configmaps", "secrets"):
        assert kube.objects(resource, "qa") == [], resource
    with config(kube) as cfg, pytest.raises(helm.HelmNotFoundError):
        cfg.history(RELEASE)


def test_an_unknown_kind_fails_with_a_readable_reason_and_changes_nothing(
        kube: KubeSimulator, tmp_path: Path) -> None:
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gadget\n"
    chart = write_chart(tmp_path / "chart", extra=widget)
    with config(kube) as cfg, pytest.raises(helm.HelmError) as failed:
        cfg.install(chart, RELEASE, {"image": {"digest": DIGEST_1}}, wait="watcher", timeout=5)
    assert 'no matches for kind "Widget" in version "example.com/v1"' in str(failed.value)
    assert kube.objects("deployments", "qa") == []


def test_release_records_and_objects_survive_a_restart(
        kube_factory: Callable[..., KubeSimulator], chart: Path, tmp_path: Path) -> None:
    first = kube_factory(data_dir=tmp_path / "kube")
    upgrade_install(first, chart, DIGEST_1)
    pods_before = {p["metadata"]["name"] for p in first.objects("pods", "qa")}
    first.stop()
    assert (tmp_path / "kube" / "objects.json").exists()

    second = kube_factory(data_dir=tmp_path / "kube")
    assert history(second) == recorded(second) == [(1, "deployed")]
    assert {p["metadata"]["name"] for p in second.objects("pods", "qa")} == pods_before
    upgrade_install(second, chart, DIGEST_3)
    assert history(second) == [(1, "superseded"), (2, "deployed")]
    assert image_of(second) == f"{REPOSITORY}@{DIGEST_3}"
    pods_after = {p["metadata"]["name"] for p in second.objects("pods", "qa")}
    assert len(pods_after) == 2 and not pods_after & pods_before
