"""The pure rules of deploy, rollout and rollback over Kubernetes JSON."""

import pytest

from shared.cluster.errors import InvalidTarget
from shared.cluster.rollout import (
    CHANGE_CAUSE,
    DIGEST,
    PREVIOUS_IMAGE,
    RELEASE_ID,
    REVISION,
    Snapshot,
    current_replica_set,
    deploy_patch,
    history_of,
    rollback_patch,
    rollout_status,
    snapshot_of,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
IMAGE1 = f"acr.io/delivery@{D1}"
IMAGE2 = f"acr.io/delivery@{D2}"


def deployment(image=IMAGE1, *, generation=1, observed=1, replicas=2, updated=2, available=2,
               total=2, annotations=None, conditions=None):
    return {
        "metadata": {"name": "delivery", "uid": "u-1", "generation": generation,
                     "resourceVersion": "41",
                     "annotations": {REVISION: "3", **(annotations or {})}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "delivery"}},
                 "template": {"spec": {"containers": [
                     {"name": "sidecar", "image": "envoy:1"},
                     {"name": "app", "image": image}]}}},
        "status": {"observedGeneration": observed, "replicas": total,
                   "updatedReplicas": updated, "availableReplicas": available,
                   "conditions": conditions or []},
    }


def test_snapshot_reads_the_named_container_revision_and_our_annotations():
    snap = snapshot_of(deployment(annotations={RELEASE_ID: "r-1", "other": "x"}), "app")
    assert (snap.image, snap.revision, snap.replicas) == (IMAGE1, 3, 2)
    assert snap.annotations == {RELEASE_ID: "r-1", DIGEST: None, PREVIOUS_IMAGE: None,
                                CHANGE_CAUSE: None}
    assert snap.resource_version == "41"
    assert Snapshot.from_dict(snap.to_dict()) == Snapshot(
        "app", IMAGE1, 3, 2, snap.annotations)


def test_a_missing_container_is_named():
    with pytest.raises(InvalidTarget, match="container 'api' not in the pod template "
                                            r"\(has sidecar, app\)"):
        snapshot_of(deployment(), "api")


def test_deploy_patch_touches_only_one_container_and_our_annotations():
    patch = deploy_patch(snapshot_of(deployment(), "app"), IMAGE2, "release r-2", "r-2", "41")
    assert patch == {
        "metadata": {"resourceVersion": "41", "annotations": {
            CHANGE_CAUSE: "release r-2", RELEASE_ID: "r-2", DIGEST: D2,
            PREVIOUS_IMAGE: IMAGE1}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": IMAGE2}]}}}}


def test_deploy_refuses_an_image_without_digest():
    with pytest.raises(InvalidTarget, match="pinned by digest"):
        deploy_patch(snapshot_of(deployment(), "app"), "acr.io/delivery:latest", "c", "r")


def test_rollback_patch_restores_annotations_and_removes_those_that_were_absent():
    before = snapshot_of(deployment(annotations={RELEASE_ID: "r-1", DIGEST: D1}), "app")
    patch = rollback_patch(before, "rollback to revision 3")
    assert patch["metadata"]["annotations"] == {
        RELEASE_ID: "r-1", DIGEST: D1, PREVIOUS_IMAGE: None,
        CHANGE_CAUSE: "rollback to revision 3"}
    assert patch["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": IMAGE1}]
    assert "resourceVersion" not in patch["metadata"]


def test_rollout_complete_only_when_observed_and_all_replicas_updated_and_available():
    assert rollout_status(deployment(), []).done
    assert rollout_status(deployment(generation=2, observed=1), []).state == "progressing"
    assert rollout_status(deployment(available=1), []).state == "progressing"
    old_pods_remaining = rollout_status(deployment(total=3), [])
    assert old_pods_remaining.state == "progressing"
    assert "2 updated, 2 available of 2" in old_pods_remaining.message


@pytest.mark.parametrize("reason", ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"])
def test_failing_pods_fail_the_rollout_early_with_the_reason(reason):
    pod = {"metadata": {"name": "delivery-abc-1"}, "status": {"containerStatuses": [
        {"name": "app", "state": {"waiting": {"reason": reason, "message": "back-off"}}}]}}
    status = rollout_status(deployment(available=1, updated=2), [pod])
    assert status.state == "failed" and status.failed == reason
    assert status.message == f"pod delivery-abc-1: container app is {reason}: back-off"


def test_progress_deadline_exceeded_fails_the_rollout():
    condition = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                 "message": 'ReplicaSet "delivery-x" has timed out progressing.'}
    status = rollout_status(deployment(available=0, conditions=[condition]), [])
    assert status.failed == "ProgressDeadlineExceeded"
    assert "timed out progressing" in status.message


def replica_set(revision, image, cause=None, uid="u-1", replicas=0):
    return {"metadata": {"name": f"delivery-{revision}",
                         "ownerReferences": [{"uid": uid}],
                         "annotations": {REVISION: str(revision),
                                         **({CHANGE_CAUSE: cause} if cause else {})}},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
            "status": {"replicas": replicas}}


def test_current_replica_set_and_history():
    sets = [replica_set(3, IMAGE1, "release r-1", replicas=2), replica_set(1, "old@x"),
            replica_set(2, IMAGE2, "release r-2"), replica_set(3, IMAGE1, uid="someone-else")]
    assert current_replica_set(deployment(), sets) is sets[0]
    assert history_of(deployment(), sets, "app") == [
        {"revision": 1, "changeCause": None, "image": "old@x", "replicas": 0},
        {"revision": 2, "changeCause": "release r-2", "image": IMAGE2, "replicas": 0},
        {"revision": 3, "changeCause": "release r-1", "image": IMAGE1, "replicas": 2}]
