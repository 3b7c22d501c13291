"""batch/v1 Jobs in the simulator through the real `kubernetes` client: a pod per attempt that
succeeds or fails by its image's behaviour, the Job's status and conditions as Kubernetes writes
them, back-off limit, deadline, TTL, deletion with and without propagation, logs, watches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from sandbox.kube.pytest_fixtures import START, api_client
from sandbox.kube.server import KubeSimulator


def job(name: str, image: str = "reg/tests:1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"labels": {"suite": "acceptance"}}, "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "test", "image": image, "args": ["--fast"]}]}},
                **spec}}


@pytest.fixture
def batch(kube_api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(kube_api)


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


def pods_of(core: client.CoreV1Api, name: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod("qa", label_selector=f"job-name={name}").items)


def conditions(found: client.V1Job) -> list[tuple[str, str, str]]:
    return [(c.type, c.status, c.reason) for c in found.status.conditions or []]


def test_a_job_runs_one_pod_that_succeeds(kube: KubeSimulator, batch: client.BatchV1Api,
                                          core: client.CoreV1Api) -> None:
    created = batch.create_namespaced_job("qa", job("smoke", backoffLimit=0))
    uid = created.metadata.uid
    assert created.spec.backoff_limit == 0 and created.spec.completions == 1
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    found = batch.read_namespaced_job("smoke", "qa")
    assert (found.status.succeeded, found.status.failed, found.status.active) == (1, None, None)
    assert conditions(found) == [("SuccessCriteriaMet", "True", "CompletionsReached"),
                                 ("Complete", "True", "CompletionsReached")]
    assert found.status.start_time == found.status.completion_time
    [pod] = pods_of(core, "smoke")
    assert pod.metadata.name.startswith("smoke-") and len(pod.metadata.name) == len("smoke-") + 5
    assert pod.metadata.labels == {"suite": "acceptance", "job-name": "smoke",
                                   "batch.kubernetes.io/job-name": "smoke",
                                   "controller-uid": uid,
                                   "batch.kubernetes.io/controller-uid": uid}
    [owner] = pod.metadata.owner_references
    assert (owner.kind, owner.api_version, owner.uid, owner.controller) == (
        "Job", "batch/v1", uid, True)
    assert pod.status.phase == "Succeeded"
    assert pod.spec.containers[0].args == ["--fast"]
    log = core.read_namespaced_pod_log(pod.metadata.name, "qa", tail_lines=1)
    assert log == "test passed\n"


def test_a_failing_image_is_retried_up_to_the_backoff_limit(
        kube: KubeSimulator, batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    kube.set_image_behaviour("tests:bad", "test-fail")
    batch.create_namespaced_job("qa", job("flaky", "reg/tests:bad", backoffLimit=1))
    found = batch.read_namespaced_job("flaky", "qa")
    assert (found.status.failed, found.status.active, found.status.conditions) == (1, None, None)
    assert len(pods_of(core, "flaky")) == 1  # the next attempt waits out the 10 s back-off
    kube.advance(10)
    found = batch.read_namespaced_job("flaky", "qa")
    assert found.status.failed == 2
    assert conditions(found) == [("FailureTarget", "True", "BackoffLimitExceeded"),
                                 ("Failed", "True", "BackoffLimitExceeded")]
    assert found.status.conditions[1].message == "Job has reached the specified backoff limit"
    assert found.status.completion_time is None
    pods = pods_of(core, "flaky")
    assert [p.status.phase for p in pods] == ["Failed", "Failed"]
    log = core.read_namespaced_pod_log(pods[0].metadata.name, "qa")
    assert log.endswith("GET /healthz: expected 200, got 503\ntest failed\n")


def test_pods_run_for_job_seconds(kube_factory: Callable[..., KubeSimulator]) -> None:
    sim = kube_factory(job_seconds=5)
    with api_client(sim) as api:
        batch = client.BatchV1Api(api)
        batch.create_namespaced_job("qa", job("slow"))
        running = batch.read_namespaced_job("slow", "qa").status
        assert (running.active, running.ready, running.succeeded) == (1, 1, None)
        sim.advance(5)
        done = batch.read_namespaced_job("slow", "qa").status
        assert (done.active, done.succeeded) == (None, 1)
        assert done.completion_time.timestamp() == START + 5


def test_active_deadline_fails_the_job_and_stops_its_pod(
        kube: KubeSimulator, batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    kube.set_image_behaviour("tests:hang", "never-ready")
    batch.create_namespaced_job("qa", job("hang", "reg/tests:hang", activeDeadlineSeconds=30))
    kube.advance(29)
    assert batch.read_namespaced_job("hang", "qa").status.active == 1
    kube.advance(1)
    found = batch.read_namespaced_job("hang", "qa")
    assert conditions(found) == [("FailureTarget", "True", "DeadlineExceeded"),
                                 ("Failed", "True", "DeadlineExceeded")]
    assert found.status.conditions[1].message == "Job was active longer than specified deadline"
    assert found.status.conditions[1].last_transition_time.timestamp() == START + 30
    assert (found.status.active, found.status.failed) == (None, 1)
    assert pods_of(core, "hang") == []


def test_deleting_a_job_orphans_its_pods_unless_propagation_says_otherwise(
        kube: KubeSimulator, batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    for name in ("kept", "background", "foreground"):
        batch.create_namespaced_job("qa", job(name))
    batch.delete_namespaced_job("kept", "qa")
    [orphan] = pods_of(core, "kept")
    assert orphan.metadata.owner_references is None
    batch.delete_namespaced_job("background", "qa", propagation_policy="Background")
    batch.delete_namespaced_job("foreground", "qa",
                                body=client.V1DeleteOptions(propagation_policy="Foreground"))
    assert pods_of(core, "background") == pods_of(core, "foreground") == []
    with pytest.raises(ApiException) as missing:
        batch.read_namespaced_job("background", "qa")
    assert missing.value.status == 404


def test_finished_jobs_go_after_their_ttl(kube: KubeSimulator, batch: client.BatchV1Api,
                                          core: client.CoreV1Api) -> None:
    batch.create_namespaced_job("qa", job("short-lived", ttlSecondsAfterFinished=60))
    assert batch.read_namespaced_job("short-lived", "qa").status.succeeded == 1
    kube.advance(60)
    assert [j.metadata.name for j in batch.list_namespaced_job("qa").items] == []
    assert pods_of(core, "short-lived") == []


@pytest.mark.parametrize(("change", "field"), [
    ({"restartPolicy": "Always"}, "spec.template.spec.restartPolicy"),
    ({"containers": []}, "spec.template.spec.containers"),
])
def test_invalid_jobs_are_refused(batch: client.BatchV1Api, change: dict[str, Any],
                                  field: str) -> None:
    body = job("bad")
    body["spec"]["template"]["spec"].update(change)
    with pytest.raises(ApiException) as refused:
        batch.create_namespaced_job("qa", body)
    assert refused.value.status == 422
    assert field in refused.value.body
    assert batch.list_namespaced_job("qa").items == []


def test_a_job_template_cannot_change(batch: client.BatchV1Api) -> None:
    batch.create_namespaced_job("qa", job("fixed"))
    with pytest.raises(ApiException) as refused:
        batch.patch_namespaced_job("fixed", "qa", {"spec": {"template": {"spec": {
            "containers": [{"name": "test", "image": "reg/tests:2"}]}}}})
    assert refused.value.status == 422 and "field is immutable" in refused.value.body
    patched = batch.patch_namespaced_job("fixed", "qa", {"metadata": {"labels": {"a": "b"}}})
    assert patched.metadata.labels == {"a": "b"} and patched.status.succeeded == 1


def test_jobs_are_watched(kube: KubeSimulator, batch: client.BatchV1Api) -> None:
    kube.set_image_behaviour("tests:hang", "never-ready")
    batch.create_namespaced_job("qa", job("watched", "reg/tests:hang",
                                          activeDeadlineSeconds=10))
    listed = batch.list_namespaced_job("qa")
    kube.advance(10)
    stream: Iterator[dict[str, Any]] = watch.Watch().stream(
        batch.list_namespaced_job, "qa", resource_version=listed.metadata.resource_version,
        timeout_seconds=2)
    seen = []
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name,
                     [c.type for c in event["object"].status.conditions or []]))
        if seen[-1][2]:
            break
    assert seen[-1] == ("MODIFIED", "watched", ["FailureTarget", "Failed"])
