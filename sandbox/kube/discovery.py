"""What the simulated API server says about itself: discovery lists and a minimal OpenAPI v3.

Discovery is the plain (not aggregated) form, which clients accept as a fallback. The OpenAPI
v3 documents name one PATCH operation per kind, tagged with its group-version-kind and taking
`fieldValidation`, which is what client-go and Helm look for before they let the server do
the validating; no schemas are published.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sandbox.kube.objects import GroupResource, JsonDict

ALL_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    """A served resource: where it lives, what it is called, whether it can be written."""

    gr: GroupResource
    version: str
    list_kind: str
    singular: str
    short_names: tuple[str, ...]
    writable: bool
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.gr.group}/{self.version}" if self.gr.group else self.version

    @property
    def group_version(self) -> str:
        """The discovery path: `api/v1` or `apis/<group>/<version>`."""
        return f"apis/{self.api_version}" if self.gr.group else "api/v1"

    def typed(self, obj: JsonDict) -> JsonDict:
        """`obj` with kind and apiVersion first, as a single-object response carries them."""
        return {"kind": self.gr.kind, "apiVersion": self.api_version,
                **{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}}


def groups(resources: Iterable[ResourceType]) -> dict[str, list[ResourceType]]:
    """Resource types by group name ("" for core), in the order given."""
    found: dict[str, list[ResourceType]] = {}
    for rt in resources:
        found.setdefault(rt.gr.group, []).append(rt)
    return found


def document(path: str, resources: list[ResourceType], server_address: str) -> JsonDict | None:
    """The discovery or OpenAPI document at `path`, or None if `path` is not one."""
    by_group = groups(resources)
    named = {group: rts for group, rts in by_group.items() if group}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [_group(group) for group in named]}
    for group in named:
        if path == f"/apis/{group}":
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}
    for rts in by_group.values():
        if path == "/" + rts[0].group_version:
            return _resource_list(rts)
    if path == "/openapi/v3":
        return {"paths": {
            rts[0].group_version: {"serverRelativeURL": f"/openapi/v3/{rts[0].group_version}"
                                                        f"?hash={_hash(rts)}"}
            for rts in by_group.values()
        }}
    for rts in by_group.values():
        if path == f"/openapi/v3/{rts[0].group_version}":
            return _openapi(rts)
    return None


def _group(group: str) -> JsonDict:
    version = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"name": group, "versions": [version], "preferredVersion": version}


def _resource_list(rts: list[ResourceType]) -> JsonDict:
    resources = []
    for rt in rts:
        resources.append({
            "name": rt.gr.resource, "singularName": rt.singular, "namespaced": True,
            "kind": rt.gr.kind, "verbs": list(ALL_VERBS if rt.writable else READ_VERBS),
            "shortNames": list(rt.short_names), "categories": ["all"],
        })
        for sub in rt.subresources:
            resources.append({"name": f"{rt.gr.resource}/{sub}", "singularName": "",
                              "namespaced": True, "kind": rt.gr.kind if sub != "log" else "Pod",
                              "verbs": ["get"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": rts[0].api_version,
            "resources": resources}


def _openapi(rts: list[ResourceType]) -> JsonDict:
    paths: JsonDict = {}
    for rt in rts:
        gvk = {"group": rt.gr.group, "version": rt.version, "kind": rt.gr.kind}
        parameters = [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in ("dryRun", "fieldManager", "fieldValidation", "force")
        ]
        operation = {"operationId": f"patch{rt.gr.kind}", "parameters": parameters,
                     "responses": {"200": {"description": "OK"}},
                     "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk}
        paths[f"/{rt.group_version}/namespaces/{{namespace}}/{rt.gr.resource}/{{name}}"] = {
            "patch": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.37.0"},
            "paths": paths, "components": {"schemas": {}}}


def _hash(rts: list[ResourceType]) -> str:
    text = json.dumps(_openapi(rts), sort_keys=True)
    return hashlib.sha512(text.encode()).hexdigest()[:32].upper()
