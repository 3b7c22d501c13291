"""Helm v4's own Go SDK (helm_python) against the Kubernetes simulator: install, upgrade,
rollback, history, status, values, test hooks, uninstall, failures with their reasons, and the
release records read back without Helm. Timings are printed (`-s`) for bench/helm.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from sandbox.kube import KubeSimulator
from sandbox.kube.pytest_fixtures import QA_TOKEN

DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64
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
