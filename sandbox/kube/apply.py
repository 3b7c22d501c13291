"""Server-side apply, good enough for Helm: the applied object replaces the fields it names.

Each field manager's last applied field set is kept in `metadata.managedFields` (FieldsV1
shape, lists as leaves). Applying again removes the fields the manager applied last time but
no longer names, then merges the new object in (objects recursively, lists and scalars
replaced). Not modelled: conflicts between managers, list merge keys, `force`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from sandbox.kube.objects import JsonDict, bad_request, rfc3339

CONTENT_TYPE = "application/apply-patch+yaml"
IGNORED = frozenset({"status"})
IGNORED_METADATA = frozenset({
    "managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink",
})


def parse(body: bytes) -> JsonDict:
    """The applied object from a YAML (or JSON) body; aliases are refused."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        try:
            parsed = yaml.load(body, Loader=_NoAliasLoader)  # noqa: S506 (safe, aliases refused)
        except yaml.YAMLError as error:
            raise bad_request(f"error decoding YAML: {str(error).splitlines()[0]}") from error
    if not isinstance(parsed, dict):
        raise bad_request("the applied configuration must be an object")
    return parsed


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not accepted")
        return super().compose_node(parent, index)


def field_set(obj: JsonDict) -> JsonDict:
    """The fields an applied object names, as FieldsV1 (`{"f:spec": {"f:replicas": {}}}`)."""
    fields: JsonDict = {}
    for key, value in obj.items():
        if key in IGNORED or key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items()
                     if k not in IGNORED_METADATA and k not in ("name", "namespace")}
        fields[f"f:{key}"] = field_set(value) if isinstance(value, dict) and value else {}
    return fields


def _remove(target: JsonDict, old: JsonDict, new: JsonDict) -> None:
    for name, children in old.items():
        key = name.removeprefix("f:")
        if key not in target:
            continue
        if name not in new:
            del target[key]
        elif children and isinstance(target[key], dict):
            _remove(target[key], children, new[name])


def _merge(target: JsonDict, applied: JsonDict) -> None:
    for key, value in applied.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def apply(current: JsonDict | None, applied: JsonDict, manager: str, api_version: str,
          now: float) -> JsonDict:
    """The object after `manager` applies `applied` to `current` (None: it does not exist)."""
    applied = {k: v for k, v in applied.items() if k not in IGNORED}
    fields = field_set(applied)
    entries = [] if current is None else list(current["metadata"].get("managedFields") or [])
    previous = next((e for e in entries
                     if e.get("manager") == manager and e.get("operation") == "Apply"), None)
    result = copy.deepcopy(current) if current is not None else {}
    if previous is not None:
        _remove(result, previous.get("fieldsV1") or {}, fields)
    metadata = dict(applied.get("metadata") or {})
    for key in IGNORED_METADATA:
        metadata.pop(key, None)
    _merge(result, {**applied, "metadata": metadata})
    entry = {"manager": manager, "operation": "Apply", "apiVersion": api_version,
             "time": rfc3339(now), "fieldsType": "FieldsV1", "fieldsV1": fields}
    entries = [e for e in entries if e is not previous] + [entry]
    result.setdefault("metadata", {})["managedFields"] = entries
    return result
