"""Helm v4's own Go SDK (helm_python) against the Kubernetes simulator: install, upgrade,
rollback, history, status, values, test hooks, uninstall, failures with their reasons, and the
release records read back without Helm. Timings are printed (`-s`) for bench/helm.py."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from kubernetes import client, watch

from sandbox.kube import KubeSimulator, protobuf
from sandbox.kube.api import KubeApi, Request
from sandbox.kube.controller import DeploymentController
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN, QA_TOKEN, START, api_client
from sandbox.kube.store import Store

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


UNREADY = "running but not ready"


def waiting_reasons(sim: KubeSimulator) -> set[str]:
    """Why the release's pods are not ready (waiting reasons, or UNREADY), read as product
    code reads them."""
    with api_client(sim, QA_TOKEN, "qa") as api:
        pods = client.CoreV1Api(api).list_namespaced_pod("qa", label_selector=f"app={RELEASE}")
    reasons = set()
    for pod in pods.items:
        for status in pod.status.container_statuses or []:
            if status.state is not None and status.state.waiting is not None:
                reasons.add(status.state.waiting.reason)
            elif not status.ready:
                reasons.add(UNREADY)
    return reasons


@pytest.mark.parametrize(("behaviour", "reason"), [
    ("crash", "CrashLoopBackOff"), ("pull-error", "ImagePullBackOff"),
    ("never-ready", UNREADY)])
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


def test_each_helm_test_run_takes_its_time_again(kube: KubeSimulator, chart: Path) -> None:
    upgrade_install(kube, chart, DIGEST_1)
    kube.rollout_seconds = 5.0  # test pods now run for 5 s of simulator time
    seen: list[str] = []
    for _ in range(2):
        results: list[dict[str, Any]] = []

        def run_tests(into: list[dict[str, Any]]) -> None:
            with config(kube) as cfg:
                into.append(cfg.test(RELEASE, logs=True, timeout=20))

        testing = threading.Thread(target=run_tests, args=(results,))
        testing.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            running = [pod["metadata"]["uid"] for pod in kube.objects("pods", "qa")
                       if pod["metadata"]["name"] == "web-acceptance"
                       and pod["status"]["phase"] == "Running"
                       and pod["metadata"]["uid"] not in seen]
            if running:
                seen += running
                break
            time.sleep(0.02)
        kube.advance(6)
        testing.join(20)
        assert len(results) == 1 and "test passed" in results[0]["logs"]
    assert len(seen) == 2  # the second pod, made under the same name, ran too


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



@pytest.mark.parametrize("content", ["{not json", '{"objects": [{"resource": "pods"}]}', "[]"])
def test_a_damaged_state_file_is_named_and_left_alone(tmp_path: Path, content: str) -> None:
    state = tmp_path / "objects.json"
    state.write_text(content)
    with pytest.raises(ValueError, match="objects.json is not a simulator state file"):
        KubeSimulator(data_dir=tmp_path)
    assert state.read_text() == content


# --- the parts Helm relies on, one at a time ---------------------------------------------------

RELEASE_SECRET = {
    "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
    "metadata": {"name": "sh.helm.release.v1.web.v1", "namespace": "qa",
                 "labels": {"name": "web", "owner": "helm", "status": "deployed", "version": "1"}},
    "data": {"release": base64.b64encode(b"H4sIAAAA-not-really-gzip").decode()},
}


def raw(sim: KubeSimulator, method: str, path: str, body: bytes = b"",
        content_type: str = "application/json", token: str = ADMIN_TOKEN) -> tuple[int, Any]:
    """One request as client-go would send it (any body, any content type)."""
    with api_client(sim, token) as api:
        response = api.rest_client.pool_manager.request(
            method, sim.url + path, body=body or None, headers={
                "Authorization": f"Bearer {token}", "Content-Type": content_type,
                "Accept": "application/json"})
    data = response.data
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data.decode()


def test_protobuf_secrets_are_decoded_and_bad_bodies_change_nothing(kube: KubeSimulator) -> None:
    body = protobuf.encode_secret(RELEASE_SECRET)
    path = "/api/v1/namespaces/qa/secrets"
    status, created = raw(kube, "POST", path, body, protobuf.CONTENT_TYPE)
    assert status == 201, created
    assert created["metadata"]["labels"] == RELEASE_SECRET["metadata"]["labels"]
    assert created["data"] == RELEASE_SECRET["data"] and created["type"] == "helm.sh/release.v1"
    for broken in (body[:-3], b"k8s\x00\x0a\xff", b"not protobuf at all"):
        status, answer = raw(kube, "PUT", f"{path}/sh.helm.release.v1.web.v1", broken,
                             protobuf.CONTENT_TYPE)
        assert status == 400 and answer["reason"] == "BadRequest", answer
    assert kube.get("secrets", "qa", "sh.helm.release.v1.web.v1")["data"] == created["data"]
    status, answer = raw(kube, "POST", "/api/v1/namespaces/qa/configmaps", body,
                         protobuf.CONTENT_TYPE)
    assert status == 415 and kube.objects("configmaps", "qa") == []


def test_server_side_apply_creates_then_replaces_the_fields_it_names(kube: KubeSimulator) -> None:
    path = "/api/v1/namespaces/qa/configmaps/settings?fieldManager=helm&force=false"
    first = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n" \
            b"    tier: web\n    team: a\ndata:\n  a: '1'\n  b: '2'\n"
    status, created = raw(kube, "PATCH", path, first, "application/apply-patch+yaml")
    assert status == 201, created
    status, _ = raw(kube, "PATCH", "/api/v1/namespaces/qa/configmaps/settings",
                    json.dumps({"data": {"c": "3"}}).encode(), "application/merge-patch+json")
    assert status == 200
    second = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n" \
             b"    tier: web\ndata:\n  a: '10'\n"
    status, updated = raw(kube, "PATCH", path, second, "application/apply-patch+yaml")
    assert status == 200, updated
    assert updated["data"] == {"a": "10", "c": "3"}  # b was helm's and is gone; c is not helm's
    assert updated["metadata"]["labels"] == {"tier": "web"}
    assert [entry["manager"] for entry in updated["metadata"]["managedFields"]] == ["helm"]
    bomb = b"a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    for body, query in ((bomb, "?fieldManager=helm"), (first, "")):
        status, answer = raw(kube, "PATCH", "/api/v1/namespaces/qa/configmaps/settings" + query,
                             body, "application/apply-patch+yaml")
        assert status == 400, answer
    assert kube.get("configmaps", "qa", "settings")["data"] == {"a": "10", "c": "3"}


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/namespaces/qa/secrets",
     {"metadata": {"name": "s"}, "data": {"key": "not base64!"}}, "data[key]"),
    ("/api/v1/namespaces/qa/services", {"metadata": {"name": "svc"}, "spec": {}}, "spec.ports"),
    ("/api/v1/namespaces/qa/pods", {"metadata": {"name": "p"}, "spec": {"containers": []}},
     "spec.containers"),
    ("/api/v1/namespaces/qa/configmaps", {"metadata": {"name": "Bad_Name"}}, "metadata.name"),
])
def test_invalid_objects_are_422_with_the_field(kube: KubeSimulator, path: str,
                                                body: dict[str, Any], field: str) -> None:
    status, answer = raw(kube, "POST", path, json.dumps(body).encode())
    assert status == 422, answer
    assert [cause["field"] for cause in answer["details"]["causes"]] == [field]
    assert kube.objects(path.rsplit("/", 1)[1], "qa") == []


def test_watches_stream_changes_by_label_and_stop_at_their_timeout(kube: KubeSimulator) -> None:
    with api_client(kube) as api:
        core = client.CoreV1Api(api)
        def create(name: str, tier: str) -> None:
            core.create_namespaced_config_map("qa", {"metadata": {
                "name": name, "labels": {"tier": tier}}, "data": {"v": "1"}})

        create("before", "web")
        listed = core.list_namespaced_config_map("qa")
        create("a", "web")
        create("b", "db")
        core.patch_namespaced_config_map("a", "qa", {"data": {"v": "2"}})
        core.delete_namespaced_config_map("a", "qa")
        started = time.monotonic()
        events = [
            (event["type"], event["object"].metadata.name,
             (event["object"].data or {}).get("v"))
            for event in watch.Watch().stream(
                core.list_namespaced_config_map, "qa", label_selector="tier=web",
                resource_version=listed.metadata.resource_version, timeout_seconds=1)
        ]
        assert time.monotonic() - started < 10
    assert events == [("ADDED", "a", "1"), ("MODIFIED", "a", "2"), ("DELETED", "a", "2")]


def test_watch_initial_events_end_with_a_bookmark_and_old_versions_expire() -> None:
    store = Store()
    api = KubeApi(store, DeploymentController(store), None, lambda: "127.0.0.1:1")
    path = "/api/v1/namespaces/qa/secrets"
    for name in ("one", "two"):
        api.handle(Request("POST", path, {}, {}, json.dumps(
            {"metadata": {"name": name, "labels": {"owner": "helm"}}}).encode()), START)
    query = {"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
             "resourceVersionMatch": "NotOlderThan", "labelSelector": "owner=helm"}
    stream = api.watch(Request("GET", path, query, {}), START)
    lines = [json.loads(line) for line in stream.poll(store)]
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in lines] == [
        ("ADDED", "one"), ("ADDED", "two"), ("BOOKMARK", None)]
    assert lines[-1]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}
    api.handle(Request("DELETE", f"{path}/one", {}, {}), START)
    assert [json.loads(line)["type"] for line in stream.poll(store)] == ["DELETED"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_events", store._events.__class__(maxlen=1))
        api.handle(Request("DELETE", f"{path}/two", {}, {}), START)
        expired = api.watch(Request("GET", path, {"watch": "true", "resourceVersion": "1"}, {}),
                            START)
        (line,) = expired.poll(store)
    assert json.loads(line)["object"]["code"] == 410 and expired.closed


def test_watches_and_deletes_are_authorised_per_namespace(kube: KubeSimulator) -> None:
    kube.create_deployment("prod", "web", "reg/web:1")
    for method, path in (("GET", "/api/v1/namespaces/prod/secrets?watch=true"),
                         ("DELETE", "/apis/apps/v1/namespaces/prod/deployments/web")):
        status, answer = raw(kube, method, path, token=QA_TOKEN)
        assert status == 403 and answer["reason"] == "Forbidden", answer
    assert kube.get("deployments", "prod", "web")["metadata"]["name"] == "web"
