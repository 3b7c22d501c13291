"""The simulator's pure parts without HTTP: patch formats, selectors, hashing, validation, and
the API layer's answers to requests the typed client cannot send."""

from __future__ import annotations

import json

import pytest

from sandbox.kube.api import KubeApi, Request
from sandbox.kube.controller import DeploymentController, image_id
from sandbox.kube.objects import (
    ApiError,
    default_deployment,
    matches,
    parse_selector,
    selector_requirements,
    surge_and_unavailable,
    template_hash,
    validate_deployment,
)
from sandbox.kube.patches import PatchError, json_merge_patch, json_patch, strategic_merge_patch
from sandbox.kube.store import Store

POD = {"spec": {"containers": [
    {"name": "app", "image": "web:1", "env": [{"name": "A", "value": "1"}]},
    {"name": "proxy", "image": "envoy:1"},
]}}


def test_strategic_merge_merges_containers_by_name() -> None:
    patched = strategic_merge_patch(POD, {"spec": {"containers": [
        {"name": "app", "image": "web:2", "env": [{"name": "B", "value": "2"}]},
        {"name": "debug", "image": "busybox"},
    ]}})
    assert patched["spec"]["containers"] == [
        {"name": "app", "image": "web:2",
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "proxy", "image": "envoy:1"},
        {"name": "debug", "image": "busybox"},
    ]
    assert POD["spec"]["containers"][0]["image"] == "web:1"  # the original is untouched


def test_strategic_merge_directives() -> None:
    deleted = strategic_merge_patch(POD, {"spec": {"containers": [
        {"name": "proxy", "$patch": "delete"}]}})
    assert [c["name"] for c in deleted["spec"]["containers"]] == ["app"]
    replaced = strategic_merge_patch(POD, {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "only", "image": "x"}]}})
    assert replaced["spec"]["containers"] == [{"name": "only", "image": "x"}]
    reordered = strategic_merge_patch(POD, {"spec": {
        "$setElementOrder/containers": [{"name": "proxy"}, {"name": "app"}],
        "containers": [{"name": "app", "image": "web:3"}],
    }})
    assert [c["image"] for c in reordered["spec"]["containers"]] == ["envoy:1", "web:3"]
    removed_key = strategic_merge_patch(POD, {"spec": {"containers": [
        {"name": "app", "env": None}]}})
    assert "env" not in removed_key["spec"]["containers"][0]
    finalizers = strategic_merge_patch(
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert finalizers["metadata"]["finalizers"] == ["b", "c"]
    retained = strategic_merge_patch(
        {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
        {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}})
    assert retained == {"strategy": {"type": "Recreate"}}
    tolerations = strategic_merge_patch({"tolerations": [{"key": "a"}]},
                                        {"tolerations": [{"key": "b"}]})
    assert tolerations == {"tolerations": [{"key": "b"}]}  # no merge key: replaced


def test_strategic_merge_needs_the_merge_key() -> None:
    with pytest.raises(PatchError, match="does not contain declared merge key: name"):
        strategic_merge_patch(POD, {"spec": {"containers": [{"image": "web:2"}]}})
    with pytest.raises(PatchError):
        strategic_merge_patch(POD, [{"op": "add"}])


def test_json_merge_patch_follows_rfc_7386() -> None:
    original = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3]}
    assert json_merge_patch(original, patch) == {"a": "z", "c": {"d": "e"}, "list": [3]}
    assert json_merge_patch({"a": "b"}, ["c"]) == ["c"]


def test_json_patch_operations() -> None:
    document = {"a": {"b~c": 1, "list": [1, 2]}, "x/y": 0}
    patched = json_patch(document, [
        {"op": "add", "path": "/a/list/-", "value": 3},
        {"op": "add", "path": "/a/list/0", "value": 0},
        {"op": "replace", "path": "/a/b~0c", "value": 2},
        {"op": "copy", "from": "/a/b~0c", "path": "/copied"},
        {"op": "move", "from": "/x~1y", "path": "/moved"},
        {"op": "remove", "path": "/a/list/1"},
        {"op": "test", "path": "/copied", "value": 2},
    ])
    assert patched == {"a": {"b~c": 2, "list": [0, 2, 3]}, "copied": 2, "moved": 0}
    for operations in (
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "remove", "path": "/a/list/9"}],
        [{"op": "test", "path": "/x~1y", "value": 1}],
        [{"op": "explode", "path": "/a"}],
        [{"op": "add", "path": "/a"}],
        {"op": "add"},
    ):
        with pytest.raises(PatchError):
            json_patch(document, operations)


@pytest.mark.parametrize(("selector", "labels", "selected"), [
    ("app=web", {"app": "web"}, True),
    ("app==web,tier=front", {"app": "web"}, False),
    ("app!=web", {}, True),
    ("app in (web, api)", {"app": "api"}, True),
    ("app notin (web,api),tier", {"app": "db", "tier": "x"}, True),
    ("!canary", {"canary": "true"}, False),
    ("", {"anything": "x"}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], selected: bool) -> None:
    assert matches(parse_selector(selector), labels) is selected


def test_malformed_selectors_are_bad_requests() -> None:
    for selector in ("app in web", "a=b=c", "!a=b"):
        with pytest.raises(ApiError) as error:
            parse_selector(selector)
        assert error.value.code == 400


def test_label_selector_objects() -> None:
    requirements = selector_requirements({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                             {"key": "canary", "operator": "DoesNotExist"}],
    })
    assert matches(requirements, {"app": "web", "tier": "b"})
    assert not matches(requirements, {"app": "web", "tier": "b", "canary": "1"})


def test_template_hash_ignores_the_hash_label_and_looks_like_kubernetes() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}
    with_hash = {"metadata": {"labels": {"app": "web", "pod-template-hash": "x"}},
                 "spec": {"containers": []}}
    assert template_hash(template) == template_hash(with_hash)
    assert set(template_hash(template)) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert template_hash(template) != template_hash({**template, "spec": {"x": 1}})


def test_surge_and_unavailable_round_like_the_controller() -> None:
    assert surge_and_unavailable({"replicas": 2}) == (1, 0)
    assert surge_and_unavailable({"replicas": 10}) == (3, 2)
    assert surge_and_unavailable({"replicas": 3, "strategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}) == (0, 1)
    assert surge_and_unavailable({"replicas": 3, "strategy": {"type": "Recreate"}}) == (0, 3)


def test_validation_reports_field_errors() -> None:
    deployment = default_deployment({
        "metadata": {"name": "Web_1"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "other"}},
                              "spec": {"containers": [{"name": "app"}]}}},
    })
    fields = [field for field, _, _ in validate_deployment(deployment)]
    assert fields == ["metadata.name", "spec.template.metadata.labels",
                      "spec.template.spec.containers[0].image"]


def test_image_ids() -> None:
    digest = "sha256:" + "0" * 64
    assert image_id(f"reg:5000/web@{digest}") == f"reg:5000/web@{digest}"
    assert image_id("reg:5000/web:1").startswith("reg:5000/web@sha256:")
    assert image_id("reg:5000/web").startswith("reg:5000/web@sha256:")


@pytest.fixture
def api() -> KubeApi:
    store = Store()
    return KubeApi(store, DeploymentController(store), {"t": None}, lambda: "127.0.0.1:1")


def call(api: KubeApi, method: str, path: str, body: bytes = b"", token: str = "t",
         content_type: str = "application/json", **query: str) -> tuple[int, dict | str]:
    headers = {"authorization": f"Bearer {token}", "content-type": content_type}
    return api.handle(Request(method, path, query, headers, body), now=1_800_000_000.0)


@pytest.mark.parametrize(("method", "path", "body", "query", "code", "reason"), [
    ("POST", "/apis/apps/v1/namespaces/qa/deployments", b"{not json", {}, 400, "BadRequest"),
    ("POST", "/apis/apps/v1/namespaces/qa/deployments", b"[]", {}, 400, "BadRequest"),
    ("GET", "/apis/apps/v1/namespaces/qa/deployments", b"", {"watch": "true"}, 400,
     "BadRequest"),
    ("DELETE", "/apis/apps/v1/namespaces/qa/deployments", b"", {}, 405, "MethodNotAllowed"),
    ("POST", "/apis/apps/v1/namespaces/qa/replicasets", b"{}", {}, 405, "MethodNotAllowed"),
    ("GET", "/apis/networking.k8s.io/v1/namespaces/qa/ingresses", b"", {}, 404, "NotFound"),
    ("GET", "/apis/batch/v1/namespaces/qa/cronjobs", b"", {}, 404, "NotFound"),
    ("DELETE", "/apis/batch/v1/namespaces/qa/jobs/t", b'{"propagationPolicy": "Sideways"}', {},
     400, "BadRequest"),
    ("GET", "/apis/apps/v1/namespaces/qa/deployments/web/scale", b"", {}, 404, "NotFound"),
    ("GET", "/apis/apps/v1/namespaces/qa/deployments", b"", {"labelSelector": "a in b"}, 400,
     "BadRequest"),
])
def test_api_errors_are_status_objects(api: KubeApi, method: str, path: str, body: bytes,
                                       query: dict[str, str], code: int, reason: str) -> None:
    status, answer = call(api, method, path, body, **query)
    assert status == code
    assert isinstance(answer, dict)
    assert (answer["kind"], answer["status"], answer["reason"], answer["code"]) == (
        "Status", "Failure", reason, code)


def test_jobs_are_served(api: KubeApi) -> None:
    status, answer = call(api, "GET", "/apis/batch/v1/namespaces/qa/jobs")
    assert status == 200 and isinstance(answer, dict)
    assert (answer["kind"], answer["apiVersion"], answer["items"]) == ("JobList", "batch/v1", [])


def test_create_with_generate_name_and_a_wrong_kind(api: KubeApi) -> None:
    body = {"metadata": {"generateName": "web-"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}}
    status, created = call(api, "POST", "/apis/apps/v1/namespaces/qa/deployments",
                           json.dumps(body).encode())
    assert status == 201 and isinstance(created, dict)
    assert created["metadata"]["name"].startswith("web-")
    assert len(created["metadata"]["name"]) == len("web-") + 5
    wrong = {**body, "kind": "StatefulSet"}
    status, _ = call(api, "POST", "/apis/apps/v1/namespaces/qa/deployments",
                     json.dumps(wrong).encode())
    assert status == 400


def test_health_and_version_need_no_token(api: KubeApi) -> None:
    assert call(api, "GET", "/healthz", token="nope") == (200, "ok")
    assert call(api, "GET", "/version", token="nope")[0] == 200
    assert call(api, "GET", "/apis", token="nope")[0] == 401


GOOD_TEMPLATE = {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "app", "image": "web:1"}]}}
SELECTOR = {"matchLabels": {"app": "web"}}


@pytest.mark.parametrize("spec", [
    {"selector": SELECTOR, "template": GOOD_TEMPLATE,
     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": -1}}},
    {"selector": SELECTOR, "template": GOOD_TEMPLATE,
     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}}},
    {"selector": SELECTOR, "template": GOOD_TEMPLATE, "revisionHistoryLimit": -1},
    {"selector": SELECTOR, "template": {**GOOD_TEMPLATE, "spec": {"containers": [
        {"name": "App_1", "image": "web:1"}]}}},
    {"strategy": "fast"},
    {"template": {"metadata": [], "spec": {"containers": [{"name": "app", "image": "x"}]}}},
    {"template": {"spec": {"containers": {"name": "app"}}}},
    None,
])
def test_malformed_deployments_are_invalid_not_server_errors(api: KubeApi, spec: object) -> None:
    body = {"metadata": {"name": "web"}, "spec": spec}
    status, answer = call(api, "POST", "/apis/apps/v1/namespaces/qa/deployments",
                          json.dumps(body).encode())
    assert status == 422, answer
