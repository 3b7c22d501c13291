"""The rules of a Deployment made beside the target's (a canary, a blue-green slot), pure.

A sibling copies the target Deployment's spec with one label added to its selector and pod
labels (so its ReplicaSets are its own), the new image in the target container, and our
annotations. A Service is pointed at one Deployment's pods by adding that Deployment's
current `pod-template-hash` to its selector, as Argo Rollouts does: the team's own labels
stay as they are, and one patch moves the traffic.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import InvalidTarget
from .rollout import PREFIX, container_of

TRACK = PREFIX + "track"  # a canary's pods: release-workflow.io/track=canary
SLOT = PREFIX + "slot"  # the second blue-green slot's pods: release-workflow.io/slot=green
STABLE_REPLICAS = PREFIX + "stable-replicas"  # on the canary: the stable's pods before it
SWITCH_TO = PREFIX + "switch-to"  # on the active Service: the slot it moves to once ready
POD_TEMPLATE_HASH = "pod-template-hash"
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp",
                 "managedFields", "selfLink", "ownerReferences")


def canary_name(deployment: str) -> str:
    """The canary Deployment of a stable Deployment."""
    return f"{deployment}-canary"


def slot_names(deployment: str) -> tuple[str, str]:
    """A blue-green target's two slots: its own Deployment (blue) and `<name>-green`."""
    return deployment, f"{deployment}-green"


def sibling(source: dict[str, Any], name: str, label: tuple[str, str], container: str,
            image: str, replicas: int, annotations: dict[str, str]) -> dict[str, Any]:
    """A Deployment beside `source`: its spec with `label` added to the selector and the
    pod labels, `image` in `container`, `replicas` pods, and `annotations`."""
    body = copy.deepcopy(source)
    body.pop("status", None)
    metadata = body.setdefault("metadata", {})
    for field in SERVER_FIELDS:
        metadata.pop(field, None)
    metadata["name"] = name
    metadata["annotations"] = dict(annotations)
    spec = body.setdefault("spec", {})
    spec["replicas"] = replicas
    key, value = label
    selector = spec.setdefault("selector", {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), key: value}
    template_metadata = spec.setdefault("template", {}).setdefault("metadata", {})
    labels = {k: v for k, v in (template_metadata.get("labels") or {}).items()
              if k != POD_TEMPLATE_HASH}
    template_metadata["labels"] = {**labels, key: value}
    container_of(body, container)["image"] = image
    return body


def image_of(deployment: dict[str, Any], container: str) -> str:
    """The image of the named container of a Deployment's pod template."""
    return str(container_of(deployment, container).get("image", ""))


def template_hash(replica_set: dict[str, Any] | None) -> str | None:
    """The `pod-template-hash` of a ReplicaSet (its pods carry it), if it has one."""
    labels = ((replica_set or {}).get("metadata") or {}).get("labels") or {}
    value = labels.get(POD_TEMPLATE_HASH)
    return value if isinstance(value, str) and value else None


def selected_hash(service: dict[str, Any]) -> str | None:
    """The `pod-template-hash` a Service's selector names, if it names one."""
    selector = (service.get("spec") or {}).get("selector") or {}
    value = selector.get(POD_TEMPLATE_HASH)
    return value if isinstance(value, str) and value else None


def selector_patch(hash_: str, pending: str | None = None) -> dict[str, Any]:
    """Strategic-merge patch pointing a Service at the pods of one template hash, and
    setting (or, with None, clearing) the slot it waits to switch to."""
    return {"metadata": {"annotations": {SWITCH_TO: pending}},
            "spec": {"selector": {POD_TEMPLATE_HASH: hash_}}}


def pending_switch(service: dict[str, Any]) -> str | None:
    """The slot a Service moves to once that slot is ready (set by a deploy or a restore)."""
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(SWITCH_TO)
    return value if isinstance(value, str) and value else None


def require_selector(service: dict[str, Any], name: str) -> None:
    """A Service that selects nothing cannot be switched (an ExternalName, a headless one
    without a selector)."""
    if not (service.get("spec") or {}).get("selector"):
        raise InvalidTarget(f"service {name} has no selector: blue-green switches a Service's"
                            " selector")
