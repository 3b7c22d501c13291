"""The deployment activities run by devhost, with the kubeconfig read from local secrets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator
from shared.cluster.patcher import DeploymentPatcher
from shared.cluster.requests import ClusterRequest
from shared.cluster.rollout import Snapshot
from shared.cluster.targets import KINDS, TargetKind
from shared.deploy.evidence import Evidence, Measurement, Verdict
from shared.deploy.target import DeployTarget
from tests.apphost import run_activities

REPO = Path(__file__).resolve().parents[2]
D1, D2 = ("sha256:" + c * 64 for c in "12")
V1, V2 = (f"acr.io/delivery@{d}" for d in (D1, D2))
TARGET = {"cluster": "qa-cluster", "namespace": "qa", "deployment": "delivery", "container": "app"}
CONNECTION = {"name": "qa-cluster", "kubeconfigSecret": "qa-kubeconfig", "aks": None}
SECRETS = {"local": {"environment": "qa"}}


def request(**fields: Any) -> dict[str, Any]:
    return {"target": TARGET, "connection": CONNECTION, "secrets": SECRETS, **fields}


def run(tmp_path: Path, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    return run_activities(tmp_path / "devhost", *calls)


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_snapshot_deploy_watch_and_roll_back(tmp_path: Path, kube: KubeSimulator,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    kube.create_deployment("qa", "delivery", V1)
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig(ADMIN_TOKEN))
    snapshot, deployed, again, rollout = run(
        tmp_path,
        ("snapshot_deployment", request()),
        ("deploy_image", request(image=V2, changeCause="release r-2", releaseId="r-2")),
        ("deploy_image", request(image=V2, changeCause="release r-2", releaseId="r-2")),
        ("await_rollout", request(deadline=later(60), maxWaitSeconds=5)))
    assert snapshot["image"] == V1 and snapshot["revision"] == 1
    assert deployed["changed"] is True and again["changed"] is False
    assert rollout["state"] == "complete"

    (result,) = run(tmp_path, ("rollback_deployment", request(
        snapshot=snapshot, deadline=later(60), maxWaitSeconds=5)))
    assert result["changed"] is True and result["rollout"]["state"] == "complete"
    assert kube.get("deployments", "qa", "delivery")["spec"]["template"]["spec"][
        "containers"][0]["image"] == V1


def test_a_rotated_kubeconfig_is_read_again(tmp_path: Path,
                                            kube_factory: Callable[..., KubeSimulator],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    kube = kube_factory(tokens={"old-token": None, "new-token": None})
    kube.create_deployment("qa", "delivery", V1)
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig("old-token"))
    (first,) = run(tmp_path, ("snapshot_deployment", request()))
    assert first["image"] == V1
    kube._api.tokens.pop("old-token")  # the cluster rotated its credentials
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig("new-token"))
    (second,) = run(tmp_path, ("snapshot_deployment", request()))
    assert second["image"] == V1


@pytest.mark.parametrize("body, reason", [
    ({"target": TARGET}, "connection must be an object"),
    (request(target={"cluster": "qa-cluster"}), "target needs namespace, deployment, container"),
    (request(image="acr.io/delivery:latest", changeCause="c", releaseId="r"),
     "pinned by digest"),
    (request(secrets={"vault": {}}), "secrets"),
    (request(target=["qa-cluster"]), "target must be a JSON object"),
    ({**request(), "target": {"namespace": "qa"}, "connection": {}}, "target needs cluster"),
])
def test_bad_requests_are_refused_before_any_cluster_call(
        tmp_path: Path, kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch, body: dict,
        reason: str) -> None:
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig(ADMIN_TOKEN))
    kube.reset_requests()
    (failure,) = run(tmp_path, ("deploy_image", body))
    assert isinstance(failure, Exception) and reason in str(failure)
    assert [r for r in kube.requests() if r[0] == "PATCH"] == []


class Service(BaseHTTPRequestHandler):
    """A service that answers 200 only to the right bearer token."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        ok = self.headers.get("Authorization") == "Bearer top-secret"
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"no")

    def log_message(self, *args: object) -> None:
        pass


def test_verify_release_resolves_header_secrets(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SECRETS__QA__VERIFY_TOKEN", "Bearer top-secret")
    check = {"name": "health", "url": f"http://127.0.0.1:{server.server_address[1]}/",
             "headers": {"Authorization": "verify-token"}, "withinSeconds": 1}
    try:
        (verdict,) = run(tmp_path, ("verify_release", {"checks": [check], "secrets": SECRETS}))
        monkeypatch.setenv("SECRETS__QA__VERIFY_TOKEN", "Bearer wrong")
        (refused,) = run(tmp_path, ("verify_release", {"checks": [check], "secrets": SECRETS}))
    finally:
        server.shutdown()
        server.server_close()
    assert verdict["passed"] is True and verdict["verdicts"][0]["attempts"][0]["status"] == 200
    assert refused["passed"] is False and "status 401" in refused["verdicts"][0]["reason"]
    assert "top-secret" not in json.dumps([verdict, refused])


class Mirror:
    """A second target kind for the test: it names a `release` (as a Helm target will) and
    patches the Deployment of that name through the real adapter, noting every call."""

    calls: list[tuple[str, str]] = []

    def __init__(self, request: ClusterRequest) -> None:
        target = {**request.target, "deployment": request.target["release"]}
        self._inner = DeploymentPatcher.open(ClusterRequest.from_dict(
            {**request.body, "target": target}))
        self._release = request.target["release"]

    @property
    def kind(self) -> str:
        return "mirror"

    def _note(self, step: str) -> None:
        Mirror.calls.append((step, self._release))

    def snapshot(self) -> Snapshot:
        self._note("snapshot")
        return self._inner.snapshot()

    def deploy(self, image: str, change_cause: str, release_id: str) -> Any:
        self._note("deploy")
        return self._inner.deploy(image, change_cause, release_id)

    def await_ready(self, deadline: float, max_wait: float) -> Any:
        self._note("await_ready")
        return self._inner.await_ready(deadline, max_wait)

    def verify(self, checks: Any, secrets: Any) -> Evidence:
        self._note("verify")
        return Evidence.of("mirror", tuple(
            Measurement(str(c["name"]), Verdict.PASSED, "mirrored") for c in checks))

    def restore(self, snapshot: Any, change_cause: str | None) -> Any:
        self._note("restore")
        return self._inner.restore(snapshot, change_cause)


def open_mirror(request: ClusterRequest) -> DeployTarget:
    return Mirror(request)


MIRROR = TargetKind("mirror", frozenset({"release", "container"}), open_mirror)


def image_of(kube: KubeSimulator, name: str) -> str:
    deployment = kube.get("deployments", "qa", name)
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_the_target_kind_picks_the_implementation(tmp_path: Path, kube: KubeSimulator,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    kube.create_deployment("qa", "delivery", V1)
    kube.create_deployment("qa", "delivery-mirror", V1)
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig(ADMIN_TOKEN))
    mirrored = {"cluster": "qa-cluster", "namespace": "qa", "release": "delivery-mirror",
                "container": "app"}
    deploy = {"image": V2, "changeCause": "release r-2", "releaseId": "r-2"}
    Mirror.calls = []
    with KINDS.registered(MIRROR):
        by_shape, by_name, plain, checked = run(
            tmp_path,
            ("snapshot_deployment", {**request(), "target": mirrored}),
            ("deploy_image", {**request(**deploy), "target": {**mirrored, "kind": "mirror"}}),
            ("snapshot_deployment", request()),
            ("verify_release", {**request(), "target": mirrored,
                                "checks": [{"name": "smoke", "url": "http://127.0.0.1:9/"}]}))
    assert by_shape["image"] == V1 and plain["image"] == V1
    assert by_name["changed"] is True
    assert image_of(kube, "delivery-mirror") == V2 and image_of(kube, "delivery") == V1
    assert Mirror.calls == [("snapshot", "delivery-mirror"), ("deploy", "delivery-mirror"),
                            ("verify", "delivery-mirror")]
    # A request naming its target is answered with the kind's whole evidence.
    assert Evidence.from_dict(checked) == Evidence.of("mirror", (
        Measurement("smoke", Verdict.PASSED, "mirrored"),))


def test_a_kind_that_is_not_registered_is_refused_before_any_cluster_call(
        tmp_path: Path, kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    kube.create_deployment("qa", "delivery", V1)
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig(ADMIN_TOKEN))
    kube.reset_requests()
    (failure,) = run(tmp_path, ("deploy_image", request(
        image=V2, changeCause="c", releaseId="r", target={**TARGET, "kind": "mirror"})))
    assert isinstance(failure, Exception)
    assert "target kind 'mirror' is not known (known: blueGreen, canary, deployment, helm)" \
        in str(failure)
    assert kube.requests() == []


def test_a_kind_is_registered_once_and_only_for_its_block() -> None:
    with KINDS.registered(MIRROR):
        assert KINDS.kind_of({"release": "r", "container": "app"}) is MIRROR
        with pytest.raises(ValueError, match="'mirror' is already registered"):
            KINDS.register(MIRROR)
    assert KINDS.kind_of({"release": "r", "container": "app"}) is KINDS.default
    assert KINDS.kind_of(TARGET).name == "deployment"
