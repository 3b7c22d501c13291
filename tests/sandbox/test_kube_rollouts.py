"""The simulated Deployment controller seen through the real client: rollouts, revisions,
rollbacks, failing images and progress deadlines. Time moves only with `advance()`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from sandbox.kube import KubeSimulator
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import api_client

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"


@pytest.fixture
def apps(kube_api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(kube_api)


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


def set_image(apps: client.AppsV1Api, name: str, image: str, cause: str | None = None,
              namespace: str = "qa", **spec: object) -> client.V1Deployment:
    """Patch one container's image (and change-cause) the way the product does."""
    patch: dict = {"spec": {
        **spec, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    if cause is not None:
        patch["metadata"] = {"annotations": {CHANGE_CAUSE: cause}}
    return apps.patch_namespaced_deployment(name, namespace, patch)


def conditions(deployment: client.V1Deployment) -> dict[str, client.V1DeploymentCondition]:
    return {condition.type: condition for condition in deployment.status.conditions}


def replica_sets(apps: client.AppsV1Api, name: str) -> dict[str, client.V1ReplicaSet]:
    """The Deployment's ReplicaSets by image."""
    found = apps.list_namespaced_replica_set("qa", label_selector=f"app={name}").items
    return {rs.spec.template.spec.containers[0].image: rs for rs in found}


def waiting_reasons(core: client.CoreV1Api, image: str) -> list[str | None]:
    pods = core.list_namespaced_pod("qa", label_selector="app=web").items
    return [
        status.state.waiting.reason if status.state.waiting else None
        for pod in pods for status in pod.status.container_statuses if status.image == image
    ]


def test_rollout_completes_right_after_the_change(kube: KubeSimulator,
                                                  apps: client.AppsV1Api) -> None:
    kube.create_deployment("qa", "web", "reg/web:1", annotations={CHANGE_CAUSE: "first"})
    written = set_image(apps, "web", "reg/web:2", cause="release 2")
    assert written.metadata.generation == 2
    assert written.status.observed_generation == 1  # the controller runs after the write

    deployment = apps.read_namespaced_deployment("web", "qa")
    status = deployment.status
    assert status.observed_generation == 2
    assert (status.replicas, status.updated_replicas, status.ready_replicas,
            status.available_replicas, status.unavailable_replicas) == (2, 2, 2, 2, None)
    progressing = conditions(deployment)["Progressing"]
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")
    assert progressing.message.endswith("has successfully progressed.")
    assert conditions(deployment)["Available"].status == "True"
    assert deployment.metadata.annotations[REVISION] == "2"

    sets = replica_sets(apps, "web")
    new, old = sets["reg/web:2"], sets["reg/web:1"]
    assert (new.spec.replicas, new.status.ready_replicas) == (2, 2)
    assert (old.spec.replicas, old.status.replicas, old.status.ready_replicas) == (0, 0, None)
    assert new.metadata.annotations[REVISION] == "2"
    assert old.metadata.annotations[REVISION] == "1"
    assert new.metadata.annotations[CHANGE_CAUSE] == "release 2"
    assert old.metadata.annotations[CHANGE_CAUSE] == "first"
    assert new.metadata.name == f"web-{new.metadata.labels['pod-template-hash']}"
    assert new.metadata.owner_references[0].uid == deployment.metadata.uid


def test_rollout_progresses_over_rollout_seconds(kube_factory: Callable[..., KubeSimulator]
                                                 ) -> None:
    kube = kube_factory(rollout_seconds=10)
    kube.create_deployment("qa", "web", "reg/web:1", replicas=4)
    kube.advance(10)
    with api_client(kube) as api:
        apps = client.AppsV1Api(api)
        set_image(apps, "web", "reg/web:2")

        def snapshot() -> tuple[int | None, ...]:
            status = apps.read_namespaced_deployment("web", "qa").status
            old = replica_sets(apps, "web")["reg/web:1"].spec.replicas
            return (status.replicas, status.updated_replicas, status.available_replicas,
                    status.unavailable_replicas, old)

        # maxSurge 25% of 4 = 1, maxUnavailable 25% of 4 = 1
        assert snapshot() == (5, 2, 3, 2, 3)
        kube.advance(5)
        assert snapshot() == (5, 4, 3, 2, 1)
        deployment = apps.read_namespaced_deployment("web", "qa")
        assert conditions(deployment)["Progressing"].reason == "ReplicaSetUpdated"
        kube.advance(5)
        assert snapshot() == (4, 4, 4, None, 0)
        deployment = apps.read_namespaced_deployment("web", "qa")
        progressing = conditions(deployment)["Progressing"]
        assert progressing.reason == "NewReplicaSetAvailable"
        assert progressing.last_update_time.timestamp() == kube.now()


def test_rollout_progresses_over_wall_time(kube_factory: Callable[..., KubeSimulator]) -> None:
    kube = kube_factory(clock=time.time)
    kube.create_deployment("qa", "web", "reg/web:1")
    kube.rollout_seconds = 0.8
    with api_client(kube) as api:
        apps = client.AppsV1Api(api)
        set_image(apps, "web", "reg/web:2")
        first = apps.read_namespaced_deployment("web", "qa")
        assert conditions(first)["Progressing"].reason == "ReplicaSetUpdated"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            current = apps.read_namespaced_deployment("web", "qa")
            if conditions(current)["Progressing"].reason == "NewReplicaSetAvailable":
                break
            time.sleep(0.05)
        assert current.status.updated_replicas == current.status.available_replicas == 2


def test_revisions_increment_and_a_revert_reuses_the_old_replicaset(
    kube: KubeSimulator, apps: client.AppsV1Api,
) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    first_set = replica_sets(apps, "web")["reg/web:1"]
    set_image(apps, "web", "reg/web:2", cause="v2")
    set_image(apps, "web", "reg/web:3", cause="v3")
    assert apps.read_namespaced_deployment("web", "qa").metadata.annotations[REVISION] == "3"

    set_image(apps, "web", "reg/web:1", cause="rollback to v1")

    deployment = apps.read_namespaced_deployment("web", "qa")
    assert deployment.metadata.annotations[REVISION] == "4"
    assert deployment.metadata.generation == 4
    sets = replica_sets(apps, "web")
    assert len(sets) == 3
    reused = sets["reg/web:1"]
    assert reused.metadata.name == first_set.metadata.name
    assert reused.metadata.uid == first_set.metadata.uid
    assert reused.metadata.annotations[REVISION] == "4"
    assert reused.metadata.annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert reused.metadata.annotations[CHANGE_CAUSE] == "rollback to v1"
    assert reused.spec.replicas == 2
    assert {image: rs.metadata.annotations[REVISION] for image, rs in sets.items()} == {
        "reg/web:1": "4", "reg/web:2": "2", "reg/web:3": "3"}
    assert sets["reg/web:3"].spec.replicas == 0


def test_scaling_and_annotation_changes_keep_the_revision(kube: KubeSimulator,
                                                          apps: client.AppsV1Api) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    apps.patch_namespaced_deployment("web", "qa", {"spec": {"replicas": 3}})
    apps.patch_namespaced_deployment(
        "web", "qa", {"metadata": {"annotations": {CHANGE_CAUSE: "scaled"}}})

    deployment = apps.read_namespaced_deployment("web", "qa")
    assert deployment.metadata.generation == 2
    assert deployment.metadata.annotations[REVISION] == "1"
    (only,) = replica_sets(apps, "web").values()
    assert only.spec.replicas == 3
    assert only.metadata.annotations[CHANGE_CAUSE] == "scaled"
    assert deployment.status.available_replicas == 3


def test_revision_history_limit_prunes_idle_replicasets(kube: KubeSimulator,
                                                        apps: client.AppsV1Api) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    apps.patch_namespaced_deployment("web", "qa", {"spec": {"revisionHistoryLimit": 1}})
    for version in (2, 3, 4):
        set_image(apps, "web", f"reg/web:{version}")
    assert sorted(replica_sets(apps, "web")) == ["reg/web:3", "reg/web:4"]


def test_crashing_image_never_becomes_available_and_misses_the_deadline(
    kube: KubeSimulator, apps: client.AppsV1Api, core: client.CoreV1Api,
) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    kube.set_image_behaviour("reg/web:bad", "crash")
    set_image(apps, "web", "reg/web:bad", progressDeadlineSeconds=60)

    deployment = apps.read_namespaced_deployment("web", "qa")
    status = deployment.status
    # maxSurge 25% of 2 = 1 new pod, maxUnavailable 0: both old pods keep serving
    assert (status.replicas, status.updated_replicas, status.available_replicas) == (3, 1, 2)
    assert conditions(deployment)["Progressing"].reason == "ReplicaSetUpdated"
    assert waiting_reasons(core, "reg/web:bad") == ["CrashLoopBackOff"]
    pods = core.list_namespaced_pod("qa", label_selector="app=web").items
    crashing = next(p for p in pods if p.spec.containers[0].image == "reg/web:bad")
    (container,) = crashing.status.container_statuses
    assert (crashing.status.phase, container.ready, container.restart_count) == (
        "Running", False, 1)
    assert container.last_state.terminated.exit_code == 1
    assert container.image_id.startswith("reg/web@sha256:")
    ready = {c.type: c.status for c in crashing.status.conditions}["Ready"]
    assert ready == "False"

    kube.advance(59)
    deployment = apps.read_namespaced_deployment("web", "qa")
    assert conditions(deployment)["Progressing"].status == "True"
    kube.advance(2)
    deployment = apps.read_namespaced_deployment("web", "qa")
    progressing = conditions(deployment)["Progressing"]
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
    assert progressing.message == f'ReplicaSet "{crashing.metadata.owner_references[0].name}" ' \
        "has timed out progressing."
    assert progressing.last_update_time.timestamp() == kube.now() - 1
    assert deployment.status.updated_replicas == 1
    restarted = core.read_namespaced_pod(crashing.metadata.name, "qa")
    assert restarted.status.container_statuses[0].restart_count > 1


def test_new_deployment_with_a_crashing_image_is_unavailable(
    kube: KubeSimulator, apps: client.AppsV1Api,
) -> None:
    kube.set_image_behaviour("reg/web:bad", "crash")
    kube.create_deployment("qa", "web", "reg/web:bad")
    deployment = apps.read_namespaced_deployment("web", "qa")
    assert deployment.status.available_replicas is None
    assert deployment.status.ready_replicas is None
    assert deployment.status.unavailable_replicas == 2
    available = conditions(deployment)["Available"]
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")


def test_reverting_a_crashing_rollout_recovers_at_once(
    kube: KubeSimulator, apps: client.AppsV1Api, core: client.CoreV1Api,
) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    kube.set_image_behaviour("reg/web:bad", "crash")
    set_image(apps, "web", "reg/web:bad", progressDeadlineSeconds=30)
    kube.advance(31)
    set_image(apps, "web", "reg/web:1")

    deployment = apps.read_namespaced_deployment("web", "qa")
    progressing = conditions(deployment)["Progressing"]
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")
    assert progressing.last_transition_time.timestamp() == kube.now()
    assert deployment.metadata.annotations[REVISION] == "3"
    assert replica_sets(apps, "web")["reg/web:bad"].spec.replicas == 0
    assert waiting_reasons(core, "reg/web:1") == [None, None]
    assert waiting_reasons(core, "reg/web:bad") == []


def test_pull_errors_back_off(kube: KubeSimulator, apps: client.AppsV1Api,
                              core: client.CoreV1Api) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    kube.set_image_behaviour("reg/web:missing", "pull-error")
    set_image(apps, "web", "reg/web:missing")
    assert waiting_reasons(core, "reg/web:missing") == ["ErrImagePull"]
    pods = core.list_namespaced_pod("qa", label_selector="app=web").items
    pulling = next(p for p in pods if p.spec.containers[0].image == "reg/web:missing")
    assert pulling.status.phase == "Pending"
    assert pulling.status.container_statuses[0].image_id == ""
    kube.advance(10)
    assert waiting_reasons(core, "reg/web:missing") == ["ImagePullBackOff"]
    assert apps.read_namespaced_deployment("web", "qa").status.updated_replicas == 1


def test_behaviour_matches_a_digest_and_can_be_reset(
    kube: KubeSimulator, apps: client.AppsV1Api, core: client.CoreV1Api,
) -> None:
    digest = "sha256:" + "ab" * 32
    kube.create_deployment("qa", "web", "reg/web:1")
    kube.set_image_behaviour(digest[:20], "never-ready")
    set_image(apps, "web", f"reg/web@{digest}")
    pods = core.list_namespaced_pod("qa", label_selector="app=web").items
    stuck = next(p for p in pods if digest in p.spec.containers[0].image)
    (container,) = stuck.status.container_statuses
    assert (container.ready, container.state.running is not None) == (False, True)
    assert container.image_id == f"reg/web@{digest}"

    kube.set_image_behaviour(digest[:20], "ok")  # the pods get ready: the rollout finishes
    deployment = apps.read_namespaced_deployment("web", "qa")
    assert (deployment.status.updated_replicas, deployment.status.ready_replicas) == (2, 2)
    assert conditions(deployment)["Progressing"].reason == "NewReplicaSetAvailable"
    assert replica_sets(apps, "web")["reg/web:1"].spec.replicas == 0


def test_pods_starting_during_a_rollout_are_pending(
    kube_factory: Callable[..., KubeSimulator],
) -> None:
    kube = kube_factory(rollout_seconds=30)
    kube.create_deployment("qa", "web", "reg/web:1", replicas=1)
    with api_client(kube) as api:
        pods = client.CoreV1Api(api).list_namespaced_pod("qa").items
        (starting,) = pods
        assert starting.status.phase == "Pending"
        assert starting.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
        kube.advance(30)
        (running,) = client.CoreV1Api(api).list_namespaced_pod("qa").items
        assert running.metadata.name == starting.metadata.name
        assert running.status.phase == "Running"


@pytest.fixture
def recreate(kube: KubeSimulator, apps: client.AppsV1Api) -> Iterator[None]:
    kube.create_deployment("qa", "web", "reg/web:1", replicas=3)
    apps.patch_namespaced_deployment("web", "qa", {"spec": {"strategy": {
        "type": "Recreate", "rollingUpdate": None}}})
    yield


def test_recreate_strategy_replaces_all_pods(recreate: None, kube: KubeSimulator,
                                             apps: client.AppsV1Api) -> None:
    kube.set_image_behaviour("reg/web:bad", "crash")
    set_image(apps, "web", "reg/web:bad")
    sets = replica_sets(apps, "web")
    assert (sets["reg/web:1"].spec.replicas, sets["reg/web:bad"].spec.replicas) == (0, 3)


def test_kubectl_style_undo_restores_the_previous_template(
    kube: KubeSimulator, apps: client.AppsV1Api,
) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    set_image(apps, "web", "reg/web:2")
    previous = max(
        (rs for rs in replica_sets(apps, "web").values()
         if rs.metadata.annotations[REVISION] != "2"),
        key=lambda rs: int(rs.metadata.annotations[REVISION]),
    )
    template = apps.api_client.sanitize_for_serialization(previous.spec.template)
    del template["metadata"]["labels"]["pod-template-hash"]
    apps.patch_namespaced_deployment(
        "web", "qa", [{"op": "replace", "path": "/spec/template", "value": template}])

    deployment = apps.read_namespaced_deployment("web", "qa")
    assert deployment.metadata.annotations[REVISION] == "3"
    assert previous.metadata.name in conditions(deployment)["Progressing"].message
    assert len(replica_sets(apps, "web")) == 2
