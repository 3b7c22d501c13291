"""The simulated Kubernetes API without the HTTP server: routing, auth, CRUD, patch, discovery.

`KubeApi.handle` turns one request into a status code and a body (a `Status` for every
failure; text for logs and health), running the controller before it reads and after it writes.
Serves apps/v1 Deployments and ReplicaSets (read-only), batch/v1 Jobs, core/v1 Pods,
Secrets (JSON or protobuf bodies), ConfigMaps, Services and ServiceAccounts: get, list, create,
update, patch (strategic, merge, JSON patch, server-side apply), delete, `pods/<name>/log`,
discovery and a minimal OpenAPI v3. Watches stream, so the HTTP server serves them
(`KubeApi.watch` prepares one); `handle` answers them 400. Namespaces are implicit (any name
exists). Callers serialise access (the simulator holds one lock).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from kubernetes.client import V1Deployment

from sandbox.kube import apply, jobs, kinds, protobuf
from sandbox.kube.controller import DeploymentController
from sandbox.kube.discovery import ResourceType, document
from sandbox.kube.objects import (
    CONFIGMAPS,
    DEPLOYMENTS,
    JOBS,
    PODS,
    REPLICASETS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    ApiError,
    JsonDict,
    bad_request,
    default_deployment,
    field_matches,
    matches,
    name_suffix,
    parse_field_selector,
    parse_selector,
    rfc3339,
    validate_deployment,
)
from sandbox.kube.patches import PatchError, json_merge_patch, json_patch, strategic_merge_patch
from sandbox.kube.store import Store
from sandbox.kube.watch import Watch

KUBERNETES_VERSION = {
    "major": "1", "minor": "37", "gitVersion": "v1.37.0-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
    "platform": "linux/amd64",
}
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
PATCHERS: dict[str, Callable[[Any, Any], Any]] = {
    "application/json-patch+json": json_patch,
    "application/merge-patch+json": json_merge_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
}
SERVER_MANAGED = ("uid", "creationTimestamp", "generation", "namespace", "name")
NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource", {})
METHOD_NOT_ALLOWED = ApiError(
    405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
)
OPENAPI_V2 = b""  # an empty openapi_v2.Document in protobuf, the encoding clients ask for
CONTROLLED = frozenset({"deployments", "replicasets", "pods", "jobs"})  # controllers change
WITH_STATUS = frozenset({"deployments", "replicasets", "pods", "services", "jobs"})
PROPAGATION = ("Orphan", "Background", "Foreground")

RESOURCES = {
    ("apps", "deployments"): ResourceType(
        DEPLOYMENTS, "v1", "DeploymentList", "deployment", ("deploy",), writable=True,
        subresources=("status",)),
    ("apps", "replicasets"): ResourceType(
        REPLICASETS, "v1", "ReplicaSetList", "replicaset", ("rs",), writable=False,
        subresources=("status",)),
    ("", "pods"): ResourceType(PODS, "v1", "PodList", "pod", ("po",), writable=True,
                               subresources=("status", "log")),
    ("", "secrets"): ResourceType(SECRETS, "v1", "SecretList", "secret", (), writable=True),
    ("", "configmaps"): ResourceType(
        CONFIGMAPS, "v1", "ConfigMapList", "configmap", ("cm",), writable=True),
    ("", "services"): ResourceType(SERVICES, "v1", "ServiceList", "service", ("svc",),
                                   writable=True, subresources=("status",)),
    ("", "serviceaccounts"): ResourceType(
        SERVICEACCOUNTS, "v1", "ServiceAccountList", "serviceaccount", ("sa",), writable=True),
    ("batch", "jobs"): ResourceType(JOBS, "v1", "JobList", "job", (), writable=True,
                                    subresources=("status",)),
}
BY_RESOURCE = {rt.gr.resource: rt for rt in RESOURCES.values()}


@dataclass(frozen=True)
class Request:
    """One API request; `headers` may be any case-insensitive mapping (or lower-case keys)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name, self.headers.get(name.lower(), ""))


@dataclass(frozen=True)
class _Route:
    resource: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None

    def verb(self, method: str) -> str:
        if self.name is None:
            return {"GET": "list", "POST": "create", "DELETE": "deletecollection"}.get(
                method, method.lower())
        return {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


@dataclass(frozen=True)
class _Identity:
    user: str
    namespaces: frozenset[str] | None  # None: every namespace


class KubeApi:
    """Answers Kubernetes API requests from a store kept current by the Deployment controller."""

    def __init__(
        self,
        store: Store,
        controller: DeploymentController,
        tokens: Mapping[str, set[str] | None] | None,
        server_address: Callable[[], str],
    ) -> None:
        self.store = store
        self.controller = controller
        self.tokens = None if tokens is None else {
            token: None if namespaces is None else frozenset(namespaces)
            for token, namespaces in tokens.items()
        }
        self._server_address = server_address
        self._conflicts = 0

    def inject_conflicts(self, count: int) -> None:
        """Answer the next `count` Deployment updates and patches with 409 Conflict."""
        self._conflicts = count

    def handle(self, request: Request, now: float) -> tuple[int, JsonDict | str | bytes]:
        """Status code and body (JSON; text for health and logs; bytes for /openapi/v2)."""
        try:
            return self._handle(request, now)
        except ApiError as error:
            return error.code, error.status()

    def watch(self, request: Request, now: float) -> Watch:
        """Check a `watch=true` request (auth, route, selectors) and start its watch."""
        path = "/" + request.path.strip("/")
        identity = self._authenticate(request)
        route = _route(path)
        self._authorize(identity, route, "WATCH")
        if route.name is not None or request.method != "GET":
            raise METHOD_NOT_ALLOWED
        self.controller.sync(now)
        return Watch.start(self.store, route.resource, route.namespace, request.query)

    def _handle(self, request: Request, now: float) -> tuple[int, JsonDict | str | bytes]:
        path = "/" + request.path.strip("/")
        if path in PUBLIC_PATHS and request.method == "GET":
            return 200, dict(KUBERNETES_VERSION) if path == "/version" else "ok"
        identity = self._authenticate(request)
        if path == "/openapi/v2" and request.method == "GET":
            return 200, OPENAPI_V2  # clients ask for it for kinds not in v3: no kind is in it
        described = document(path, list(RESOURCES.values()), self._server_address())
        if described is not None:
            if request.method != "GET":
                raise METHOD_NOT_ALLOWED
            return 200, described
        route = _route(path)
        self._authorize(identity, route, request.method)
        if request.query.get("watch") in ("true", "1"):
            raise bad_request("watches are streamed by the simulator's HTTP server")
        controlled = route.resource.gr.resource in CONTROLLED
        if controlled:
            self.controller.sync(now)
        status, body, wrote = self._dispatch(route, request, now)
        if wrote and controlled:
            self.controller.sync(now)
        return status, body

    # --- auth ------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> _Identity:
        if self.tokens is None:
            return _Identity("system:admin", None)
        scheme, _, token = request.header("Authorization").partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.tokens:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        token = token.strip()
        digest = hashlib.sha256(token.encode()).hexdigest()[:8]
        return _Identity(f"sandbox:token:{digest}", self.tokens[token])

    def _authorize(self, identity: _Identity, route: _Route, method: str) -> None:
        if identity.namespaces is None:
            return
        if route.namespace is not None and route.namespace in identity.namespaces:
            return
        gr = route.resource.gr
        resource = gr.resource + (f"/{route.subresource}" if route.subresource else "")
        target = f'{gr} "{route.name}"' if route.name else str(gr)
        scope = (f'in the namespace "{route.namespace}"' if route.namespace is not None
                 else "at the cluster scope")
        raise ApiError(
            403, "Forbidden",
            f'{target} is forbidden: User "{identity.user}" cannot {route.verb(method)} '
            f'resource "{resource}" in API group "{gr.group}" {scope}',
            gr.details(route.name),
        )

    # --- verbs -----------------------------------------------------------------------------

    def _dispatch(self, route: _Route, request: Request, now: float
                  ) -> tuple[int, JsonDict | str | bytes, bool]:
        rt, method = route.resource, request.method
        dry_run = request.query.get("dryRun") == "All"
        if route.name is None:
            if method == "GET":
                return 200, self._list(route, request.query), False
            if method == "POST" and rt.writable and route.namespace is not None:
                body = _body(request, rt)
                created = self.create(route.namespace, body, now, dry_run, rt)
                return 201, created, not dry_run
            raise METHOD_NOT_ALLOWED
        assert route.namespace is not None
        if method == "GET":
            found = self.store.get(rt.gr.resource, route.namespace, route.name)
            if found is None:
                raise rt.gr.not_found(route.name)
            if route.subresource == "log":
                return 200, self.controller.pod_log(found, request.query), False
            return 200, rt.typed(found), False
        if route.subresource is not None or not rt.writable:
            raise METHOD_NOT_ALLOWED
        if method == "DELETE":
            policy = _propagation(request)
            return 200, self._delete(rt, route.namespace, route.name, dry_run,
                                     policy), not dry_run
        if method == "PUT":
            body = _body(request, rt)
            updated = self._update(route.namespace, route.name, body, dry_run, rt)
            return 200, updated, not dry_run
        if method == "PATCH":
            content_type = request.header("Content-Type").split(";")[0].strip().lower()
            if content_type == apply.CONTENT_TYPE:
                return self._apply(route, request, now, dry_run)
            return 200, self._patch(route.namespace, route.name, request, dry_run, rt), not dry_run
        raise METHOD_NOT_ALLOWED

    def _list(self, route: _Route, query: Mapping[str, str]) -> JsonDict:
        rt = route.resource
        selector = parse_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""))
        items = [
            obj for obj in self.store.list(rt.gr.resource, route.namespace)
            if matches(selector, obj["metadata"].get("labels")) and field_matches(fields, obj)
        ]
        metadata: JsonDict = {"resourceVersion": self.store.resource_version}
        start = _continue_offset(query.get("continue", ""))
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else 0
        if limit > 0 and start + limit < len(items):
            token = json.dumps({"offset": start + limit}).encode()
            metadata["continue"] = base64.urlsafe_b64encode(token).decode()
            metadata["remainingItemCount"] = len(items) - start - limit
            items = items[start:start + limit]
        else:
            items = items[start:]
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": metadata,
                "items": items}

    def create(self, namespace: str, body: JsonDict, now: float, dry_run: bool = False,
               rt: ResourceType | None = None, managed: list[JsonDict] | None = None
               ) -> JsonDict:
        """Create an object (a Deployment unless `rt` says otherwise) in `namespace` from a
        request body; the stored object, typed. `managed`: server-side apply's managedFields."""
        rt = rt or RESOURCES[("apps", "deployments")]
        resource = rt.gr.resource
        body = _drop_nulls(body)
        _check_kind(body, rt)
        metadata = _metadata(body)
        if metadata.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        name = metadata.get("name") or ""
        if not name and metadata.get("generateName"):
            seed = f"{namespace}/{self.store.resource_version}/{now}"
            name = metadata["generateName"] + name_suffix(seed)
        if name and self.store.get(resource, namespace, name) is not None:
            raise rt.gr.already_exists(name)
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation",
                    "managedFields", "selfLink", "deletionTimestamp"):
            metadata.pop(key, None)
        metadata.update({"name": name, "namespace": namespace, "uid": self.store.new_uid(),
                         "creationTimestamp": rfc3339(now)})
        if managed:
            metadata["managedFields"] = managed
        if resource == "deployments":
            metadata["generation"] = 1
            obj: JsonDict = {"metadata": metadata, "spec": body.get("spec"), "status": {}}
            _validated(default_deployment(obj), None)
        else:
            obj = {k: v for k, v in body.items() if k not in ("kind", "apiVersion", "status")}
            obj["metadata"] = metadata
            kinds.prepare(rt.gr, obj, None)
        if dry_run:
            return rt.typed(obj)
        return rt.typed(self.store.put(resource, obj))

    def _update(self, namespace: str, name: str, body: JsonDict, dry_run: bool,
                rt: ResourceType | None = None, managed: list[JsonDict] | None = None
                ) -> JsonDict:
        rt = rt or RESOURCES[("apps", "deployments")]
        resource = rt.gr.resource
        body = _drop_nulls(body)
        _check_kind(body, rt)
        current = self.store.get(resource, namespace, name)
        if current is None:
            raise rt.gr.not_found(name)
        metadata = _metadata(body)
        if metadata.get("name", name) != name:
            raise bad_request(f"the name of the object ({metadata.get('name')}) does not match "
                              f"the name on the URL ({name})")
        if metadata.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        if self._conflicts > 0 and resource == "deployments":
            self._conflicts -= 1
            raise rt.gr.conflict(name)
        version = metadata.get("resourceVersion")  # none: an unconditional update (allowed)
        if version and version != current["metadata"]["resourceVersion"]:
            raise rt.gr.conflict(name)
        for key in SERVER_MANAGED:
            if key in current["metadata"]:
                metadata[key] = current["metadata"][key]
        for key in ("managedFields", "selfLink"):
            metadata.pop(key, None)
        managed = managed or current["metadata"].get("managedFields")
        if managed:
            metadata["managedFields"] = managed
        metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        if resource == "deployments":
            obj: JsonDict = {"metadata": metadata, "spec": body.get("spec"),
                             "status": current["status"]}
            _validated(default_deployment(obj), current)
            if obj["spec"] != current["spec"]:
                metadata["generation"] = current["metadata"]["generation"] + 1
        else:
            obj = {k: v for k, v in body.items() if k not in ("kind", "apiVersion", "status")}
            obj["metadata"] = metadata
            kinds.prepare(rt.gr, obj, current)
            if resource in WITH_STATUS and "status" in current:
                obj["status"] = current["status"] if resource != "services" else obj["status"]
        if dry_run or _without_version(obj) == _without_version(current):
            return rt.typed(obj if dry_run else current)
        return rt.typed(self.store.put(resource, obj))

    def _patch(self, namespace: str, name: str, request: Request, dry_run: bool,
               rt: ResourceType | None = None) -> JsonDict:
        rt = rt or RESOURCES[("apps", "deployments")]
        content_type = request.header("Content-Type").split(";")[0].strip().lower()
        patcher = PATCHERS.get(content_type)
        if patcher is None:
            raise ApiError(
                415, "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: " + ", ".join([*PATCHERS, apply.CONTENT_TYPE]),
            )
        patch = _json(request.body)
        current = self.store.get(rt.gr.resource, namespace, name)
        if current is None:
            raise rt.gr.not_found(name)
        document = rt.typed(current)
        try:
            patched = patcher(document, patch)
        except PatchError as error:
            raise ApiError(422, "Invalid", str(error), rt.gr.details(name)) from error
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata", {}), dict):
            problem = ("", "FieldValueInvalid", "Invalid value: the patched object is no object")
            raise rt.gr.invalid(name, [problem])
        return self._update(namespace, name, patched, dry_run, rt)

    def _apply(self, route: _Route, request: Request, now: float, dry_run: bool
               ) -> tuple[int, JsonDict, bool]:
        """Server-side apply: create (201) or update (200) with the fields the body names."""
        rt, namespace, name = route.resource, route.namespace, route.name
        assert namespace is not None and name is not None
        manager = request.query.get("fieldManager", "")
        if not manager:
            raise bad_request("PATCH requests with apply-patch need a fieldManager")
        applied = apply.parse(request.body)
        _check_kind(applied, rt)
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("the applied object needs apiVersion and kind")
        metadata = _metadata(applied)
        if metadata.get("name", name) != name:
            raise bad_request(f"the name of the object ({metadata.get('name')}) does not match "
                              f"the name on the URL ({name})")
        current = self.store.get(rt.gr.resource, namespace, name)
        merged = apply.apply(current, applied, manager, rt.api_version, now)
        merged["metadata"].update({"name": name, "namespace": namespace})
        managed = merged["metadata"].get("managedFields")
        if current is None:
            return 201, self.create(namespace, merged, now, dry_run, rt, managed), not dry_run
        merged["metadata"].pop("resourceVersion", None)
        return 200, self._update(namespace, name, merged, dry_run, rt, managed), not dry_run

    def _delete(self, rt: ResourceType, namespace: str, name: str, dry_run: bool,
                policy: str | None = None) -> JsonDict:
        """Delete an object; its dependents go with it (garbage collection at the next sync),
        except a Job's, which batch/v1 orphans unless `policy` is Background or Foreground."""
        current = self.store.get(rt.gr.resource, namespace, name)
        if current is None:
            raise rt.gr.not_found(name)
        if dry_run:
            return rt.typed(current)
        if rt.gr == JOBS and policy in (None, "Orphan"):
            jobs.orphan(self.store, current)
        gone = self.store.delete(rt.gr.resource, namespace, name)
        assert gone is not None
        return rt.typed(gone)


def _route(path: str) -> _Route:
    segments = path.strip("/").split("/")
    if segments[:2] == ["api", "v1"]:
        group, rest = "", segments[2:]
    elif segments[:3] in (["apis", "apps", "v1"], ["apis", "batch", "v1"]):
        group, rest = segments[1], segments[3:]
    else:
        raise NOT_FOUND
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3 or (namespace is None and len(rest) > 1):
        raise NOT_FOUND
    resource = RESOURCES.get((group, rest[0]))
    if resource is None:
        raise NOT_FOUND
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if subresource is not None and subresource not in resource.subresources:
        raise NOT_FOUND
    return _Route(resource, namespace, name, subresource)


def _body(request: Request, rt: ResourceType) -> JsonDict:
    """A create or update body: JSON, or protobuf for Secrets (as client-go sends them)."""
    content_type = request.header("Content-Type").split(";")[0].strip().lower()
    if content_type == protobuf.CONTENT_TYPE and rt.gr == SECRETS:
        try:
            return protobuf.decode_secret(request.body)
        except protobuf.ProtobufError as error:
            raise bad_request(f"error decoding protobuf request body: {error}") from error
    if content_type and content_type != "application/json":
        accepted = "application/json" + (
            f", {protobuf.CONTENT_TYPE}" if rt.gr == SECRETS else "")
        raise ApiError(
            415, "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {accepted}",
        )
    return _json_object(request.body)


def _propagation(request: Request) -> str | None:
    """A delete's propagationPolicy: the query's, else a JSON DeleteOptions body's (or None)."""
    policy = request.query.get("propagationPolicy")
    if not policy and request.body.lstrip().startswith(b"{"):  # not protobuf (as Helm sends)
        options = _json(request.body)
        if isinstance(options, dict):
            policy = options.get("propagationPolicy")
            if policy is None and options.get("orphanDependents") is not None:
                policy = "Orphan" if options["orphanDependents"] else "Background"
    if policy is not None and policy not in PROPAGATION:
        raise bad_request(f'Unsupported value: "{policy}": supported values: "Foreground", '
                          '"Background", "Orphan"')
    return policy or None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"error decoding request body as JSON: {error}") from error


def _json_object(body: bytes) -> JsonDict:
    parsed = _json(body)
    if not isinstance(parsed, dict):
        raise bad_request("the request body must be a JSON object")
    return parsed


def _metadata(body: JsonDict) -> JsonDict:
    metadata = body.get("metadata")
    if metadata is None:
        metadata = body["metadata"] = {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be a JSON object")
    return metadata


def _check_kind(body: JsonDict, rt: ResourceType) -> None:
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind not in (None, "", rt.gr.kind)) or (api_version not in (None, "", rt.api_version)):
        raise bad_request(f"the API version in the data ({api_version}) or kind ({kind}) does "
                          f"not match the expected {rt.api_version} {rt.gr.kind}")


def _validated(deployment: JsonDict, old: JsonDict | None) -> None:
    """Raise 422 Invalid if `deployment` breaks the rules or the apps/v1 schema."""
    name = deployment["metadata"].get("name") or ""
    try:
        errors = validate_deployment(deployment, old)
    except (AttributeError, KeyError, TypeError, ValueError):
        errors = None  # a malformed shape: the schema check below names the field
    if errors:
        raise DEPLOYMENTS.invalid(name, errors)
    try:
        V1Deployment.from_dict(copy.deepcopy(deployment))
    except pydantic.ValidationError as error:
        raise DEPLOYMENTS.invalid(name, [
            (f"{error.title}." + ".".join(str(part) for part in problem["loc"]),
             "FieldValueInvalid", f"Invalid value: {problem['msg']}")
            for problem in error.errors()
        ]) from error
    if errors is None:
        raise DEPLOYMENTS.invalid(name, [("spec", "FieldValueInvalid", "Invalid value: malformed")])


def _drop_nulls(value: Any) -> Any:
    """JSON nulls in objects read as absent fields, as Go's decoding into structs does."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(item) for item in value]
    return value


def _without_version(obj: JsonDict) -> JsonDict:
    metadata = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return {**obj, "metadata": metadata}


def _continue_offset(token: str) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise bad_request(f"invalid continue token: {token!r}") from error
