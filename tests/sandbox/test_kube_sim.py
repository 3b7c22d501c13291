"""The Kubernetes simulator's API through the real `kubernetes` client: CRUD, patches, errors,
auth, TLS and discovery. Every call goes through the client's typed (strict) models."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sandbox.kube import KubeSimulator
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN, QA_TOKEN, api_client
from sandbox.tls import TlsFiles, make_throwaway_cert
from sandbox.tools import free_port


def deployment(name: str, *containers: tuple[str, str], replicas: int = 2) -> client.V1Deployment:
    """A Deployment body as product code would build it with the client's models."""
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[
                    client.V1Container(name=container, image=image)
                    for container, image in containers
                ]),
            ),
        ),
    )


def status_of(error: ApiException) -> dict:
    """The Status JSON an API error carried."""
    return json.loads(error.body)


def test_create_get_and_list_deployments(kube_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(kube_api)
    created = apps.create_namespaced_deployment("qa", deployment("web", ("app", "reg/web:1")))
    apps.create_namespaced_deployment("qa", deployment("api", ("app", "reg/api:1")))
    apps.create_namespaced_deployment("prod", deployment("web", ("app", "reg/web:1")))

    assert created.metadata.generation == 1
    assert created.metadata.uid and created.metadata.resource_version.isdigit()
    assert created.metadata.creation_timestamp.year == 2027
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.strategy.rolling_update.max_surge == "25%"
    assert created.spec.progress_deadline_seconds == 600
    read = apps.read_namespaced_deployment("web", "qa")
    assert read.metadata.uid == created.metadata.uid
    assert read.spec.template.spec.containers[0].image == "reg/web:1"
    assert read.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert read.metadata.annotations["deployment.kubernetes.io/revision"] == "1"

    in_qa = apps.list_namespaced_deployment("qa")
    assert [d.metadata.name for d in in_qa.items] == ["api", "web"]
    assert in_qa.metadata.resource_version.isdigit()
    selected = apps.list_namespaced_deployment("qa", label_selector="app=web")
    assert [d.metadata.name for d in selected.items] == ["web"]
    everywhere = apps.list_deployment_for_all_namespaces(label_selector="app in (web)")
    assert [(d.metadata.namespace, d.metadata.name) for d in everywhere.items] == [
        ("prod", "web"), ("qa", "web")]
    by_name = apps.list_namespaced_deployment("qa", field_selector="metadata.name=api")
    assert [d.metadata.name for d in by_name.items] == ["api"]

    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment("qa", deployment("web", ("app", "reg/web:1")))
    assert exists.value.status == 409
    assert status_of(exists.value)["reason"] == "AlreadyExists"


def test_list_pages_with_limit_and_continue(kube: KubeSimulator,
                                            kube_api: client.ApiClient) -> None:
    for name in ("a", "b", "c"):
        kube.create_deployment("qa", name, f"reg/{name}:1")
    apps = client.AppsV1Api(kube_api)
    first = apps.list_namespaced_deployment("qa", limit=2)
    assert [d.metadata.name for d in first.items] == ["a", "b"]
    assert first.metadata.remaining_item_count == 1
    rest = apps.list_namespaced_deployment("qa", limit=2, _continue=first.metadata._continue)
    assert [d.metadata.name for d in rest.items] == ["c"]
    assert rest.metadata._continue is None


def test_strategic_merge_patch_changes_only_the_named_container(
    kube_api: client.ApiClient,
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        "qa", deployment("web", ("app", "reg/web:1"), ("proxy", "reg/envoy:1.30")))

    patched = apps.patch_namespaced_deployment("web", "qa", {
        "metadata": {"annotations": {"kubernetes.io/change-cause": "release 1.4.2"}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "reg/web:2"}]}}},
    })

    containers = patched.spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [
        ("app", "reg/web:2"), ("proxy", "reg/envoy:1.30")]
    assert patched.metadata.annotations["kubernetes.io/change-cause"] == "release 1.4.2"
    assert patched.metadata.generation == 2


def test_merge_patch_replaces_lists_and_json_patch_edits_paths(
    kube_api: client.ApiClient,
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        "qa", deployment("web", ("app", "reg/web:1"), ("proxy", "reg/envoy:1.30")))

    json_patched = apps.patch_namespaced_deployment("web", "qa", [
        {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "proxy"},
        {"op": "replace", "path": "/spec/template/spec/containers/1/image",
         "value": "reg/envoy:1.31"},
    ])
    assert [c.image for c in json_patched.spec.template.spec.containers] == [
        "reg/web:1", "reg/envoy:1.31"]

    merged = apps.patch_namespaced_deployment(
        "web", "qa",
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "reg/web:3"}]}}}},
        _content_type="application/merge-patch+json",
    )
    assert [(c.name, c.image) for c in merged.spec.template.spec.containers] == [
        ("app", "reg/web:3")]

    with pytest.raises(ApiException) as failed_test:
        apps.patch_namespaced_deployment("web", "qa", [
            {"op": "test", "path": "/spec/replicas", "value": 5}])
    assert failed_test.value.status == 422


def test_replace_with_a_stale_resource_version_conflicts(kube_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment("qa", deployment("web", ("app", "reg/web:1")))
    stale = apps.read_namespaced_deployment("web", "qa")
    apps.patch_namespaced_deployment("web", "qa", {"spec": {"replicas": 3}})

    stale.spec.template.spec.containers[0].image = "reg/web:2"
    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment("web", "qa", stale)
    assert conflict.value.status == 409
    body = status_of(conflict.value)
    assert body["reason"] == "Conflict"
    assert 'deployments.apps "web": the object has been modified' in body["message"]

    fresh = apps.read_namespaced_deployment("web", "qa")
    unchanged = apps.replace_namespaced_deployment("web", "qa", fresh)  # a round trip: no-op
    assert unchanged.metadata.resource_version == fresh.metadata.resource_version
    assert unchanged.metadata.generation == fresh.metadata.generation
    fresh.spec.template.spec.containers[0].image = "reg/web:2"
    replaced = apps.replace_namespaced_deployment("web", "qa", fresh)
    assert replaced.spec.template.spec.containers[0].image == "reg/web:2"
    assert replaced.spec.replicas == 3
    assert int(replaced.metadata.resource_version) > int(fresh.metadata.resource_version)


def test_patch_with_a_stale_resource_version_conflicts(kube_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(kube_api)
    created = apps.create_namespaced_deployment("qa", deployment("web", ("app", "reg/web:1")))
    apps.patch_namespaced_deployment("web", "qa", {"spec": {"replicas": 3}})
    with pytest.raises(ApiException) as conflict:
        apps.patch_namespaced_deployment("web", "qa", {
            "metadata": {"resourceVersion": created.metadata.resource_version},
            "spec": {"replicas": 4},
        })
    assert conflict.value.status == 409


def test_injected_conflicts_fail_the_next_writes(kube: KubeSimulator,
                                                 kube_api: client.ApiClient) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    apps = client.AppsV1Api(kube_api)
    kube.inject_conflicts(2)
    image = {"containers": [{"name": "app", "image": "reg/web:2"}]}
    patch = {"spec": {"template": {"spec": image}}}
    for _ in range(2):
        with pytest.raises(ApiException) as conflict:
            apps.patch_namespaced_deployment("web", "qa", patch)
        assert conflict.value.status == 409
    assert apps.read_namespaced_deployment("web", "qa").metadata.generation == 1
    patched = apps.patch_namespaced_deployment("web", "qa", patch)
    assert patched.spec.template.spec.containers[0].image == "reg/web:2"


def test_missing_objects_are_404_with_the_apiserver_message(kube_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(kube_api)
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope", "qa")
    assert missing.value.status == 404
    assert status_of(missing.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'deployments.apps "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404,
    }
    with pytest.raises(ApiException) as missing_patch:
        apps.patch_namespaced_deployment("nope", "qa", {"spec": {"replicas": 1}})
    assert missing_patch.value.status == 404
    with pytest.raises(ApiException) as missing_pod:
        client.CoreV1Api(kube_api).read_namespaced_pod("nope", "qa")
    assert status_of(missing_pod.value)["message"] == 'pods "nope" not found'


def test_unsupported_patch_type_is_415(kube: KubeSimulator, kube_api: client.ApiClient) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    with pytest.raises(ApiException) as unsupported:
        client.AppsV1Api(kube_api).patch_namespaced_deployment(
            "web", "qa", {"spec": {"replicas": 3}}, _content_type="application/x-sandbox+json")
    assert unsupported.value.status == 415
    assert status_of(unsupported.value)["reason"] == "UnsupportedMediaType"


@pytest.mark.parametrize(("patch", "fields"), [
    ({"spec": {"template": {"spec": {"containers": [{"image": "reg/web:2"}]}}}}, None),
    ([{"op": "remove", "path": "/spec/template/spec/containers/0/image"}],
     ["spec.template.spec.containers[0].image"]),
    ({"spec": {"replicas": "three"}}, ["spec.replicas"]),
    ({"spec": {"selector": {"matchLabels": {"app": "other"}}}},
     ["spec.template.metadata.labels", "spec.selector"]),
    ([{"op": "replace", "path": "/spec/nothing/here", "value": 1}], None),
])
def test_invalid_patches_are_422(kube: KubeSimulator, kube_api: client.ApiClient,
                                 patch: dict | list, fields: list[str] | None) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    with pytest.raises(ApiException) as invalid:
        client.AppsV1Api(kube_api).patch_namespaced_deployment("web", "qa", patch)
    assert invalid.value.status == 422
    if fields is not None:
        body = status_of(invalid.value)
        assert body["reason"] == "Invalid"
        assert body["message"].startswith('Deployment.apps "web" is invalid: ')
        assert [cause["field"] for cause in body["details"]["causes"]] == fields
    assert kube.get("deployments", "qa", "web")["metadata"]["generation"] == 1


def test_create_validates_the_deployment(kube_api: client.ApiClient) -> None:
    body = deployment("web", ("app", "reg/web:1"), ("app", "reg/other:1"))
    with pytest.raises(ApiException) as invalid:
        client.AppsV1Api(kube_api).create_namespaced_deployment("qa", body)
    assert invalid.value.status == 422
    assert "spec.template.spec.containers[1].name: Duplicate value" in (
        status_of(invalid.value)["message"])


def test_dry_run_stores_nothing(kube_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(kube_api)
    answer = apps.create_namespaced_deployment(
        "qa", deployment("web", ("app", "reg/web:1")), dry_run="All")
    assert answer.metadata.name == "web"
    assert apps.list_namespaced_deployment("qa").items == []


def test_requests_without_a_valid_token_are_401(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    for token in (None, "wrong-token"):
        with api_client(kube, token) as api, pytest.raises(ApiException) as unauthorized:
            client.AppsV1Api(api).read_namespaced_deployment("web", "qa")
        assert unauthorized.value.status == 401
        assert status_of(unauthorized.value) == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
        }


def test_a_namespace_the_token_may_not_touch_is_403(kube: KubeSimulator) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    kube.create_deployment("prod", "web", "reg/web:1")
    with api_client(kube, QA_TOKEN) as api:
        apps = client.AppsV1Api(api)
        assert apps.read_namespaced_deployment("web", "qa").metadata.namespace == "qa"
        with pytest.raises(ApiException) as forbidden:
            apps.patch_namespaced_deployment("web", "prod", {"spec": {"replicas": 1}})
        assert forbidden.value.status == 403
        body = status_of(forbidden.value)
        assert body["reason"] == "Forbidden"
        assert re.fullmatch(
            r'deployments\.apps "web" is forbidden: User "[^"]+" cannot patch resource '
            r'"deployments" in API group "apps" in the namespace "prod"', body["message"])
        assert QA_TOKEN not in body["message"]
        with pytest.raises(ApiException) as cluster_wide:
            apps.list_deployment_for_all_namespaces()
        assert cluster_wide.value.status == 403
        assert "at the cluster scope" in status_of(cluster_wide.value)["message"]
        with pytest.raises(ApiException) as pods:
            client.CoreV1Api(api).list_namespaced_pod("prod")
        assert 'in the namespace "prod"' in status_of(pods.value)["message"]
    assert kube.get("deployments", "prod", "web")["spec"]["replicas"] == 2


def test_tls_verifies_with_the_throwaway_ca_only(
    kube: KubeSimulator, tls_files: TlsFiles, tmp_path: Path,
) -> None:
    assert kube.url.startswith("https://127.0.0.1:")
    configuration = client.Configuration(
        host=kube.url, api_key={"authorization": f"Bearer {ADMIN_TOKEN}"})
    configuration.ssl_ca_cert = str(tls_files.ca)
    with client.ApiClient(configuration) as api:
        assert client.VersionApi(api).get_code().git_version == "v1.37.0-sandbox"
        assert client.AppsV1Api(api).list_namespaced_deployment("qa").items == []

    other_ca = make_throwaway_cert(tmp_path / "other-ca")
    untrusting = client.Configuration(host=kube.url)
    untrusting.ssl_ca_cert = str(other_ca.ca)
    untrusting.retries = 0
    with client.ApiClient(untrusting) as api, pytest.raises(
        (urllib3.exceptions.SSLError, urllib3.exceptions.MaxRetryError)
    ) as failure:
        client.VersionApi(api).get_code()
    assert "CERTIFICATE_VERIFY_FAILED" in str(failure.value)


def test_kubeconfig_loads_into_a_client_configuration(kube: KubeSimulator) -> None:
    text = kube.kubeconfig(ADMIN_TOKEN, namespace="qa")
    document = yaml.safe_load(text)
    assert document["contexts"][0]["context"]["namespace"] == "qa"
    assert document["clusters"][0]["cluster"]["server"] == kube.url
    configuration = client.Configuration()
    config.load_kube_config_from_dict(document, client_configuration=configuration)
    assert configuration.host == kube.url
    assert configuration.api_key["BearerToken"] == f"Bearer {ADMIN_TOKEN}"
    with client.ApiClient(configuration) as api:
        assert client.AppsV1Api(api).list_namespaced_deployment("qa").items == []


def test_discovery_documents(kube_api: client.ApiClient) -> None:
    assert client.VersionApi(kube_api).get_code().minor == "37"
    assert client.CoreApi(kube_api).get_api_versions().versions == ["v1"]
    groups = client.ApisApi(kube_api).get_api_versions().groups
    assert [(g.name, g.preferred_version.group_version) for g in groups] == [
        ("apps", "apps/v1"), ("batch", "batch/v1")]
    assert client.AppsApi(kube_api).get_api_group().name == "apps"
    apps_resources = client.AppsV1Api(kube_api).get_api_resources()
    deployments = next(r for r in apps_resources.resources if r.name == "deployments")
    assert deployments.kind == "Deployment" and "patch" in deployments.verbs
    core_resources = client.CoreV1Api(kube_api).get_api_resources()
    assert "pods" in [r.name for r in core_resources.resources]


def test_plain_http_without_auth(kube_factory: Callable[..., KubeSimulator]) -> None:
    port = free_port()
    simulator = kube_factory(port=port, tls=None, tokens=None)
    assert simulator.url == f"http://127.0.0.1:{port}"
    with api_client(simulator, token=None) as api:
        apps = client.AppsV1Api(api)
        apps.create_namespaced_deployment("any", deployment("web", ("app", "reg/web:1")))
        assert apps.read_namespaced_deployment("web", "any").status.ready_replicas == 2


def test_request_log_records_method_and_path(kube: KubeSimulator,
                                             kube_api: client.ApiClient) -> None:
    kube.create_deployment("qa", "web", "reg/web:1")
    kube.reset_requests()
    apps = client.AppsV1Api(kube_api)
    apps.read_namespaced_deployment("web", "qa")
    apps.patch_namespaced_deployment("web", "qa", {"spec": {"replicas": 3}})
    client.CoreV1Api(kube_api).list_namespaced_pod("qa", label_selector="app=web")
    assert kube.requests() == [
        ("GET", "/apis/apps/v1/namespaces/qa/deployments/web"),
        ("PATCH", "/apis/apps/v1/namespaces/qa/deployments/web"),
        ("GET", "/api/v1/namespaces/qa/pods"),
    ]
    kube.reset_requests()
    assert kube.requests() == []


def test_pods_and_replicasets_are_listed_by_label_selector(
    kube: KubeSimulator, kube_api: client.ApiClient,
) -> None:
    kube.create_deployment("qa", "web", "reg/web:1", replicas=3)
    kube.create_deployment("qa", "api", "reg/api:1", replicas=1)
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)

    web_sets = apps.list_namespaced_replica_set("qa", label_selector="app=web").items
    assert len(web_sets) == 1
    web_set = apps.read_namespaced_replica_set(web_sets[0].metadata.name, "qa")
    pod_hash = web_set.metadata.labels["pod-template-hash"]
    assert web_set.spec.selector.match_labels == {"app": "web", "pod-template-hash": pod_hash}
    owner = web_set.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("Deployment", "web", True)

    selector = f"app=web,pod-template-hash={pod_hash}"
    web_pods = core.list_namespaced_pod("qa", label_selector=selector)
    assert len(web_pods.items) == 3
    for pod in web_pods.items:
        assert pod.metadata.name.startswith(f"{web_set.metadata.name}-")
        assert pod.metadata.owner_references[0].uid == web_set.metadata.uid
        assert pod.status.phase == "Running"
        (container,) = pod.status.container_statuses
        assert container.ready and container.restart_count == 0
        assert container.image_id.startswith("reg/web@sha256:")
        assert container.state.running.started_at is not None
    assert len(core.list_namespaced_pod("qa", label_selector="app in (web,api)").items) == 4
    assert len(core.list_namespaced_pod("qa", label_selector="app!=web").items) == 1
    assert core.list_namespaced_pod("qa", label_selector="!app").items == []
    assert len(core.list_pod_for_all_namespaces(label_selector="app").items) == 4
    one = core.read_namespaced_pod(web_pods.items[0].metadata.name, "qa")
    assert one.spec.containers[0].image == "reg/web:1"
    assert core.read_namespaced_pod_status(one.metadata.name, "qa").status.pod_ip
