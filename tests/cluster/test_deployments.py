"""The Kubernetes adapter with the real `kubernetes` client against the API simulator."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN, QA_TOKEN, api_client
from sandbox.kube.server import KubeSimulator
from sandbox.tls import TlsFiles
from shared.cluster.connection import AksServer, for_aks, from_kubeconfig
from shared.cluster.deployments import Deployments, DeploymentTarget
from shared.cluster.errors import ClusterAuthError, ClusterError, ClusterForbidden, InvalidTarget
from shared.cluster.rollout import CHANGE_CAUSE, DIGEST, PREVIOUS_IMAGE, RELEASE_ID

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
V1, V2, V3 = (f"acr.io/delivery@{d}" for d in (D1, D2, D3))
QA = DeploymentTarget("qa-aks", "qa", "delivery", "app")


def deployments(kube: KubeSimulator, token: str = ADMIN_TOKEN) -> Deployments:
    """The adapter on the simulator's clock: waiting advances simulated time."""
    return Deployments(api_client(kube, token), poll_interval=5, clock=kube.now,
                       sleep=kube.advance)


def patches(kube: KubeSimulator) -> int:
    return sum(1 for method, path in kube.requests()
               if method == "PATCH" and "/deployments/" in path)


def test_deploy_by_digest_and_watch_the_rollout(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "delivery", V1)
    adapter = deployments(kube)
    before = adapter.snapshot(QA)
    assert (before.image, before.revision, before.replicas) == (V1, 1, 2)

    result = adapter.deploy(QA, V2, "release r-2: delivery v2", "r-2")
    assert result.changed and result.previous_image == V1

    status = adapter.await_rollout(QA, deadline=kube.now() + 60)
    assert status.state == "complete", status
    after = adapter.snapshot(QA)
    assert after.image == V2 and after.revision == 2
    assert after.annotations == {RELEASE_ID: "r-2", DIGEST: D2, PREVIOUS_IMAGE: V1,
                                 CHANGE_CAUSE: "release r-2: delivery v2"}
    assert [(h["revision"], h["image"], h["changeCause"]) for h in adapter.history(QA)] == [
        (1, V1, None), (2, V2, "release r-2: delivery v2")]


def test_redeploying_the_same_digest_writes_nothing(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "delivery", V1)
    adapter = deployments(kube)
    adapter.deploy(QA, V2, "release r-2", "r-2")
    kube.reset_requests()
    result = adapter.deploy(QA, V2, "release r-2 again", "r-2")
    assert not result.changed and patches(kube) == 0


def test_a_rollout_that_progresses_over_time(kube_factory: Callable[..., KubeSimulator]) -> None:
    kube = kube_factory(rollout_seconds=30)
    kube.create_deployment("qa", "delivery", V1, replicas=3)
    adapter = deployments(kube)
    adapter.deploy(QA, V2, "release r-2", "r-2")
    started = kube.now()
    assert adapter.rollout_status(QA).state == "progressing"
    status = adapter.await_rollout(QA, deadline=started + 120)
    assert status.state == "complete" and 25 <= kube.now() - started <= 40


@pytest.mark.parametrize("behaviour, reason", [("crash", "CrashLoopBackOff"),
                                               ("pull-error", "ErrImagePull")])
def test_a_failing_image_fails_the_rollout_early_with_the_reason(
        kube: KubeSimulator, behaviour: str, reason: str) -> None:
    kube.create_deployment("qa", "delivery", V1)
    kube.set_image_behaviour(D3, behaviour)
    adapter = deployments(kube)
    adapter.deploy(QA, V3, "release r-3", "r-3")
    started = kube.now()
    status = adapter.await_rollout(QA, deadline=started + 600)
    assert status.state == "failed" and status.failed == reason
    assert f"container app is {reason}" in status.message
    assert kube.now() - started < 60  # long before the deadline


def test_never_ready_ends_at_the_deadline_not_after(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "delivery", V1)
    kube.set_image_behaviour(D3, "never-ready")
    adapter = deployments(kube)
    adapter.deploy(QA, V3, "release r-3", "r-3")
    started = kube.now()
    status = adapter.await_rollout(QA, deadline=started + 30)
    assert status.state == "failed" and status.failed in ("DeadlineExceeded",
                                                          "ProgressDeadlineExceeded")
    assert kube.now() - started <= 30
    partial = adapter.await_rollout(QA, deadline=kube.now() + 300, max_wait=10)
    assert partial.state == "progressing"


def test_rollback_restores_the_exact_previous_image_and_annotations(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "delivery", V1)
    adapter = deployments(kube)
    adapter.deploy(QA, V2, "release r-2", "r-2")
    adapter.await_rollout(QA, deadline=kube.now() + 60)
    good = adapter.snapshot(QA)
    kube.set_image_behaviour(D3, "crash")
    adapter.deploy(QA, V3, "release r-3", "r-3")
    assert adapter.await_rollout(QA, deadline=kube.now() + 600).failed == "CrashLoopBackOff"

    result = adapter.rollback(QA, good)
    assert result.changed
    assert adapter.await_rollout(QA, deadline=kube.now() + 60).state == "complete"
    restored = adapter.snapshot(QA)
    assert restored.image == V2
    assert {k: v for k, v in restored.annotations.items() if k != CHANGE_CAUSE} == \
        {k: v for k, v in good.annotations.items() if k != CHANGE_CAUSE}
    assert restored.annotations[CHANGE_CAUSE] == f"rollback to revision 2: {V2}"
    history = adapter.history(QA)
    assert history[-1]["image"] == V2 and history[-1]["revision"] == 4
    kube.reset_requests()
    assert not adapter.rollback(QA, good).changed and patches(kube) == 0


def test_first_deploy_rollback_removes_our_annotations(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "delivery", V1)
    adapter = deployments(kube)
    untouched = adapter.snapshot(QA)
    adapter.deploy(QA, V2, "release r-2", "r-2")
    adapter.rollback(QA, untouched, "manual rollback")
    annotations = kube.get("deployments", "qa", "delivery")["metadata"]["annotations"]
    assert RELEASE_ID not in annotations and DIGEST not in annotations
    assert annotations[CHANGE_CAUSE] == "manual rollback"


def test_conflicts_are_retried_then_reported(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "delivery", V1)
    adapter = deployments(kube)
    kube.inject_conflicts(2)
    assert adapter.deploy(QA, V2, "release r-2", "r-2").changed
    assert adapter.snapshot(QA).image == V2
    kube.inject_conflicts(50)
    with pytest.raises(ClusterError, match="kept changing under us"):
        adapter.deploy(QA, V3, "release r-3", "r-3")


def test_auth_failures_name_cluster_and_namespace(kube: KubeSimulator) -> None:
    kube.create_deployment("prod", "delivery", V1)
    prod = DeploymentTarget("prod-aks", "prod", "delivery", "app")
    with pytest.raises(ClusterForbidden) as forbidden:
        deployments(kube, QA_TOKEN).snapshot(prod)
    assert str(forbidden.value).startswith("cluster prod-aks, namespace prod: forbidden to"
                                           " read deployment delivery (403)")
    with pytest.raises(ClusterAuthError) as rejected:
        deployments(kube, "not-a-token").snapshot(prod)
    assert "cluster prod-aks, namespace prod: credentials rejected (401)" in str(rejected.value)
    assert "not-a-token" not in str(rejected.value)


def test_missing_deployment_or_container(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "delivery", V1)
    adapter = deployments(kube)
    with pytest.raises(ClusterError, match="deployment nope not found"):
        adapter.snapshot(DeploymentTarget("qa-aks", "qa", "nope", "app"))
    with pytest.raises(ClusterError, match="container 'api' not in the pod template"):
        adapter.snapshot(DeploymentTarget("qa-aks", "qa", "delivery", "api"))
    with pytest.raises(InvalidTarget, match="pinned by digest"):
        adapter.deploy(QA, "acr.io/delivery:v2", "c", "r")


def test_kubeconfig_text_errors_are_clear() -> None:
    with pytest.raises(InvalidTarget, match="not valid YAML"):
        from_kubeconfig("clusters: [\n")
    with pytest.raises(InvalidTarget, match="no clusters"):
        from_kubeconfig("kind: Config\n")


class ExpiringTokens:
    """An Entra credential whose tokens expire: the first one almost at once."""

    def __init__(self, lifetimes: list[float]) -> None:
        self.lifetimes = lifetimes
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        number = len(self.scopes)
        return AccessToken(f"entra-token-{number}", int(time.time() + self.lifetimes[number - 1]))


def test_aks_token_is_refreshed_before_it_expires(
        kube_factory: Callable[..., KubeSimulator], tls_files: TlsFiles) -> None:
    kube = kube_factory(tokens={"entra-token-1": None, "entra-token-2": None})
    kube.create_deployment("qa", "delivery", V1)
    credential = ExpiringTokens([302, 3600])
    server = AksServer(kube.url, base64.b64encode(tls_files.ca.read_bytes()).decode())
    adapter = Deployments(for_aks(server, credential))
    assert adapter.snapshot(QA).image == V1
    assert adapter.snapshot(QA).image == V1
    assert len(credential.scopes) == 1  # still valid: reused
    time.sleep(2.1)  # now within five minutes of expiry
    assert adapter.snapshot(QA).image == V1
    assert credential.scopes == [("6dae42f8-4368-4678-94ff-3960e28e3630/.default",)] * 2
    assert adapter.snapshot(QA).image == V1 and len(credential.scopes) == 2
