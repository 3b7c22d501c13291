"""The canary and blue-green target kinds, through the activities devhost runs, against the
Kubernetes simulator: what each step writes, what an abort or a switch back restores, and
what is refused before the cluster is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator
from tests.apphost import run_activities

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
V1, V2, V3 = (f"acr.io/delivery@{d}" for d in (D1, D2, D3))
BASE = {"cluster": "qa-cluster", "namespace": "qa", "deployment": "delivery", "container": "app"}
CANARY = {**BASE, "kind": "canary"}
BLUE_GREEN = {**BASE, "kind": "blueGreen", "activeService": "delivery",
              "previewService": "delivery-preview"}
CONNECTION = {"name": "qa-cluster", "kubeconfigSecret": "qa-kubeconfig"}
SECRETS = {"local": {"environment": "qa"}}
CHANGE = {"changeCause": "release r-2", "releaseId": "r-2"}


def request(target: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"target": target, "connection": CONNECTION, "secrets": SECRETS, **fields}


def watch(deployment: str) -> dict[str, Any]:
    """An await_rollout request for one Deployment of a strategy (the canary, a slot)."""
    return request({**BASE, "deployment": deployment}, maxWaitSeconds=5,
                   deadline=(datetime.now(UTC) + timedelta(seconds=60)).isoformat())


def rollback(target: dict[str, Any], snapshot: dict[str, Any]) -> dict[str, Any]:
    return request(target, snapshot=snapshot, maxWaitSeconds=5,
                   deadline=(datetime.now(UTC) + timedelta(seconds=60)).isoformat())


def image(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def selector(kube: KubeSimulator, service: str) -> dict[str, str]:
    return dict(kube.get("services", "qa", service)["spec"]["selector"])


def template_hash(kube: KubeSimulator, deployment: str) -> str:
    """The pod-template-hash of the Deployment's newest ReplicaSet."""
    owned = [rs for rs in kube.objects("replicasets", "qa")
             if rs["metadata"]["name"].startswith(deployment + "-")
             and rs["metadata"]["ownerReferences"][0]["name"] == deployment]
    newest = max(owned, key=lambda rs: int(rs["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"]))
    return str(newest["metadata"]["labels"]["pod-template-hash"])


@pytest.fixture
def qa(kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> KubeSimulator:
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig(ADMIN_TOKEN))
    kube.create_deployment("qa", "delivery", V1, replicas=4)
    return kube


def test_a_canary_takes_its_share_and_an_abort_leaves_the_stable_template_alone(
        tmp_path: Path, qa: KubeSimulator) -> None:
    revision = qa.get("deployments", "qa", "delivery")["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"]
    snapshot, shifted, again, ready = run_activities(
        tmp_path / "devhost",
        ("snapshot_deployment", request(CANARY)),
        ("shift_canary", request(CANARY, image=V2, canaryPods=1, stablePods=3, **CHANGE)),
        ("shift_canary", request(CANARY, image=V2, canaryPods=1, stablePods=3, **CHANGE)),
        ("await_rollout", watch("delivery-canary")))
    assert (snapshot["image"], snapshot["replicas"]) == (V1, 4)
    assert shifted == {"canary": "delivery-canary", "canaryPods": 1, "stablePods": 3,
                       "changed": True}
    assert again["changed"] is False  # a retried step writes nothing
    assert ready["state"] == "complete"
    canary = qa.get("deployments", "qa", "delivery-canary")
    assert (image(canary), canary["spec"]["replicas"]) == (V2, 1)
    # The canary's pods carry the stable pods' labels (the Service picks both) and its own.
    assert canary["spec"]["template"]["metadata"]["labels"] == {
        "app": "delivery", "release-workflow.io/track": "canary"}
    assert canary["spec"]["selector"]["matchLabels"] == {
        "app": "delivery", "release-workflow.io/track": "canary"}
    assert canary["metadata"]["annotations"]["release-workflow.io/stable-replicas"] == "4"
    assert qa.get("deployments", "qa", "delivery")["spec"]["replicas"] == 3

    (aborted,) = run_activities(tmp_path / "devhost",
                                ("rollback_deployment", rollback(CANARY, snapshot)))
    assert aborted["rollout"]["state"] == "complete"
    assert qa.get("deployments", "qa", "delivery-canary")["spec"]["replicas"] == 0
    stable = qa.get("deployments", "qa", "delivery")
    assert (image(stable), stable["spec"]["replicas"]) == (V1, 4)
    assert stable["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision


def test_a_promoted_canary_updates_the_stable_deployment_and_goes(
        tmp_path: Path, qa: KubeSimulator) -> None:
    _, promoted, ready, retired, gone = run_activities(
        tmp_path / "devhost",
        ("shift_canary", request(CANARY, image=V2, canaryPods=2, stablePods=2, **CHANGE)),
        ("deploy_image", request(CANARY, image=V2, **CHANGE)),
        ("await_rollout", request(CANARY, maxWaitSeconds=5, deadline=(
            datetime.now(UTC) + timedelta(seconds=60)).isoformat())),
        ("retire_deployment", request(CANARY, deployment="delivery-canary")),
        ("retire_deployment", request(CANARY, deployment="delivery-canary")))
    assert promoted["changed"] is True and ready["state"] == "complete"
    stable = qa.get("deployments", "qa", "delivery")
    assert (image(stable), stable["spec"]["replicas"]) == (V2, 4)  # its pods back
    assert retired == {"deployment": "delivery-canary", "changed": True}
    assert gone["changed"] is False
    assert [d["metadata"]["name"] for d in qa.objects("deployments", "qa")] == ["delivery"]


def test_blue_green_runs_the_new_slot_beside_the_old_and_switches_in_one_patch(
        tmp_path: Path, qa: KubeSimulator) -> None:
    qa.create_service("qa", "delivery")
    qa.create_service("qa", "delivery-preview", {"app": "delivery"})
    before, staged, ready, preview, switched, after = run_activities(
        tmp_path / "devhost",
        ("snapshot_deployment", request(BLUE_GREEN)),
        ("deploy_slot", request(BLUE_GREEN, image=V2, **CHANGE)),
        ("await_rollout", watch("delivery-green")),
        ("switch_service", request(BLUE_GREEN, service="delivery-preview",
                                   slot="delivery-green")),
        ("switch_service", request(BLUE_GREEN, service="delivery", slot="delivery-green")),
        ("snapshot_deployment", request(BLUE_GREEN)))
    assert (before["slot"], before["image"]) == ("delivery", V1)
    assert staged == {"slot": "delivery-green", "active": "delivery", "changed": True}
    assert ready["state"] == "complete"
    blue, green = template_hash(qa, "delivery"), template_hash(qa, "delivery-green")
    assert preview["hash"] == green and switched["changed"] is True
    assert selector(qa, "delivery-preview") == {"app": "delivery", "pod-template-hash": green}
    assert selector(qa, "delivery") == {"app": "delivery", "pod-template-hash": green}
    assert (after["slot"], after["image"]) == ("delivery-green", V2)
    assert qa.get("deployments", "qa", "delivery")["spec"]["replicas"] == 4  # still up

    (back,) = run_activities(tmp_path / "devhost",
                             ("rollback_deployment", rollback(BLUE_GREEN, before)))
    assert back["changed"] is True and back["rollout"]["state"] == "complete"
    assert selector(qa, "delivery") == {"app": "delivery", "pod-template-hash": blue}
    assert qa.get("deployments", "qa", "delivery-green")["spec"]["replicas"] == 0
    assert image(qa.get("deployments", "qa", "delivery")) == V1


def test_a_redeploy_through_blue_green_switches_once_the_idle_slot_is_ready(
        tmp_path: Path, qa: KubeSimulator) -> None:
    qa.create_service("qa", "delivery")
    qa.create_service("qa", "delivery-preview")
    qa.rollout_seconds = 30.0  # pods take time: the switch waits for them
    deployed, early = run_activities(
        tmp_path / "devhost",
        ("deploy_image", request(BLUE_GREEN, image=V3, **CHANGE)),
        ("await_rollout", request(BLUE_GREEN, maxWaitSeconds=0, deadline=(
            datetime.now(UTC) + timedelta(seconds=600)).isoformat())))
    blue = template_hash(qa, "delivery")
    assert deployed["changed"] is True and early["state"] == "progressing"
    assert selector(qa, "delivery") == {"app": "delivery", "pod-template-hash": blue}
    qa.advance(60)
    (ready,) = run_activities(tmp_path / "devhost", ("await_rollout", request(
        BLUE_GREEN, maxWaitSeconds=5, deadline=(
            datetime.now(UTC) + timedelta(seconds=600)).isoformat())))
    assert ready["state"] == "complete" and "delivery now selects delivery-green" in \
        ready["message"]
    green = template_hash(qa, "delivery-green")
    assert selector(qa, "delivery") == {"app": "delivery", "pod-template-hash": green}
    assert qa.get("deployments", "qa", "delivery")["spec"]["replicas"] == 0


def test_steps_for_another_kind_or_with_bad_fields_are_refused_before_the_cluster(
        tmp_path: Path, qa: KubeSimulator) -> None:
    qa.create_service("qa", "delivery")
    qa.reset_requests()
    answers = run_activities(
        tmp_path / "devhost",
        ("switch_service", request(CANARY, service="delivery", slot="delivery")),
        ("shift_canary", request(BLUE_GREEN, image=V2, canaryPods=1, stablePods=3, **CHANGE)),
        ("shift_canary", request(CANARY, image=V2, canaryPods=-1, stablePods=3, **CHANGE)),
        ("shift_canary", request(CANARY, image="acr.io/delivery:2", canaryPods=1,
                                 stablePods=3, **CHANGE)),
        ("switch_service", request(BLUE_GREEN, service="other", slot="delivery")),
        ("switch_service", request(BLUE_GREEN, service="delivery", slot="elsewhere")),
        ("deploy_slot", request({**BLUE_GREEN, "previewService": ""}, image=V2, **CHANGE)))
    said = [str(answer) for answer in answers]
    assert all(isinstance(answer, Exception) for answer in answers), said
    assert "needs a blueGreen target, not canary" in said[0]
    assert "needs a canary target, not blueGreen" in said[1]
    assert "canaryPods must be a whole number of pods from 0 to 1000" in said[2]
    assert "must be pinned by digest" in said[3]
    assert "service other is neither delivery nor delivery-preview" in said[4]
    assert "elsewhere is not a slot of delivery (delivery, delivery-green)" in said[5]
    assert "needs activeService and previewService" in said[6]
    assert [r for r in qa.requests() if r[0] != "GET"] == []  # nothing written


def test_the_switch_is_visible_in_the_traffic_the_service_sends(
        tmp_path: Path, kube_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    kube = kube_factory(standins=True)
    monkeypatch.setenv("SECRETS__QA__QA_KUBECONFIG", kube.kubeconfig(ADMIN_TOKEN))
    kube.create_deployment("qa", "delivery", V1, replicas=2)
    kube.create_service("qa", "delivery")
    kube.create_service("qa", "delivery-preview")
    run_activities(tmp_path / "devhost",
                   ("deploy_slot", request(BLUE_GREEN, image=V2, **CHANGE)),
                   ("await_rollout", watch("delivery-green")))

    def versions() -> set[str]:
        url = kube.service_url("qa", "delivery")
        return {requests.get(f"{url}/version", timeout=5).json()["digest"] for _ in range(6)}

    assert versions() == {D1}  # the new slot runs, unseen by the active Service
    run_activities(tmp_path / "devhost", ("switch_service", request(
        BLUE_GREEN, service="delivery", slot="delivery-green")))
    assert versions() == {D2}


def test_a_blue_green_target_without_its_service_fails_before_anything_moves(
        tmp_path: Path, qa: KubeSimulator) -> None:
    qa.reset_requests()
    missing, staged = run_activities(
        tmp_path / "devhost", ("snapshot_deployment", request(BLUE_GREEN)),
        ("deploy_slot", request(BLUE_GREEN, image=V2, **CHANGE)))
    assert isinstance(missing, Exception) and isinstance(staged, Exception)
    assert "cluster qa-cluster, namespace qa: service delivery not found (404)" in str(missing)
    assert [r for r in qa.requests() if r[0] != "GET"] == []
    qa.create_service("qa", "delivery", {})  # a Service without a selector
    (selectless,) = run_activities(tmp_path / "devhost",
                                   ("deploy_slot", request(BLUE_GREEN, image=V2, **CHANGE)))
    assert "service delivery has no selector: blue-green switches a Service's selector" in \
        str(selectless)
    assert [d["metadata"]["name"] for d in qa.objects("deployments", "qa")] == ["delivery"]


def test_a_restore_before_the_switch_scales_the_new_slot_down_and_moves_no_traffic(
        tmp_path: Path, qa: KubeSimulator) -> None:
    qa.create_service("qa", "delivery")
    qa.create_service("qa", "delivery-preview")
    before, _, _, restored = run_activities(
        tmp_path / "devhost",
        ("snapshot_deployment", request(BLUE_GREEN)),
        ("deploy_slot", request(BLUE_GREEN, image=V2, **CHANGE)),
        ("await_rollout", watch("delivery-green")),
        ("rollback_deployment", rollback(BLUE_GREEN, {})))
    assert isinstance(restored, Exception)  # an empty snapshot is refused
    (restored,) = run_activities(tmp_path / "devhost",
                                 ("rollback_deployment", rollback(BLUE_GREEN, before)))
    assert restored["changed"] is True and restored["rollout"]["state"] == "complete"
    blue = template_hash(qa, "delivery")
    assert selector(qa, "delivery") == {"app": "delivery", "pod-template-hash": blue}
    assert qa.get("deployments", "qa", "delivery-green")["spec"]["replicas"] == 0
    assert qa.get("deployments", "qa", "delivery")["spec"]["replicas"] == 4
