"""The rules of a deploy, a rollout and a rollback, over Kubernetes JSON (pure).

Objects are the API's JSON (camelCase dicts). Nothing here calls a cluster:
`deployments.py` fetches the objects and applies the patches built here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidTarget

PREFIX = "release-workflow.io/"
RELEASE_ID = PREFIX + "release-id"
DIGEST = PREFIX + "digest"
PREVIOUS_IMAGE = PREFIX + "previous-image"
CHANGE_CAUSE = "kubernetes.io/change-cause"
REVISION = "deployment.kubernetes.io/revision"
OUR_ANNOTATIONS = (RELEASE_ID, DIGEST, PREVIOUS_IMAGE, CHANGE_CAUSE)
FAILING_REASONS = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
                             "InvalidImageName", "CreateContainerConfigError"})


@dataclass(frozen=True)
class Snapshot:
    """What runs now: the container's image, the revision, replicas and our annotations."""

    container: str
    image: str
    revision: int
    replicas: int
    annotations: dict[str, str | None]
    resource_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"container": self.container, "image": self.image, "revision": self.revision,
                "replicas": self.replicas, "annotations": dict(self.annotations)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        try:
            return cls(container=str(data["container"]), image=str(data["image"]),
                       revision=int(data.get("revision") or 0),
                       replicas=int(data.get("replicas") or 0),
                       annotations={k: data.get("annotations", {}).get(k)
                                    for k in OUR_ANNOTATIONS})
        except (KeyError, TypeError, ValueError, AttributeError) as bad:
            raise InvalidTarget(f"snapshot is incomplete: {bad}") from bad

    @property
    def digest(self) -> str | None:
        return image_digest(self.image)


@dataclass(frozen=True)
class RolloutStatus:
    """Where a rollout stands: done, failed (with the reason) or still progressing."""

    done: bool
    failed: str | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return "complete" if self.done else "failed" if self.failed else "progressing"

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.failed, "message": self.message,
                **self.details}


def image_digest(image: str) -> str | None:
    """The `sha256:…` of `repo@sha256:…`, or None for a tag-only image."""
    _, at, digest = image.partition("@")
    return digest if at and digest.startswith("sha256:") else None


def pinned_image(image: str) -> str:
    """Refuse images without a digest: every deploy names the exact image."""
    if image_digest(image) is None:
        raise InvalidTarget(f"image {image!r} must be pinned by digest (repo@sha256:…)")
    return image


def container_of(deployment: dict[str, Any], container: str) -> dict[str, Any]:
    """The named container of the pod template (InvalidTarget when absent)."""
    containers: list[dict[str, Any]] = (
        _get(deployment, "spec", "template", "spec", "containers") or [])
    for candidate in containers:
        if candidate.get("name") == container:
            return candidate
    names = ", ".join(c.get("name", "?") for c in containers) or "none"
    raise InvalidTarget(f"container {container!r} not in the pod template (has {names})")


def snapshot_of(deployment: dict[str, Any], container: str) -> Snapshot:
    """The state a rollback would restore."""
    metadata = deployment.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return Snapshot(
        container=container, image=str(container_of(deployment, container).get("image", "")),
        revision=int(annotations.get(REVISION) or 0),
        replicas=int(_get(deployment, "spec", "replicas") or 0),
        annotations={key: annotations.get(key) for key in OUR_ANNOTATIONS},
        resource_version=str(metadata.get("resourceVersion") or ""))


def deploy_patch(current: Snapshot, image: str, change_cause: str, release_id: str,
                 resource_version: str = "") -> dict[str, Any]:
    """Strategic-merge patch: only the named container's image plus our annotations."""
    annotations = {CHANGE_CAUSE: change_cause, RELEASE_ID: release_id,
                   DIGEST: image_digest(pinned_image(image)), PREVIOUS_IMAGE: current.image}
    return _patch(current.container, image, annotations, resource_version)


def rollback_patch(snapshot: Snapshot, change_cause: str,
                   resource_version: str = "") -> dict[str, Any]:
    """Restore the snapshot's image and annotations exactly; a missing one is removed."""
    annotations = {key: snapshot.annotations.get(key) for key in OUR_ANNOTATIONS}
    annotations[CHANGE_CAUSE] = change_cause
    return _patch(snapshot.container, snapshot.image, annotations, resource_version)


def rollout_status(deployment: dict[str, Any], new_pods: list[dict[str, Any]]) -> RolloutStatus:
    """Done when the controller saw the change and every replica is updated and available."""
    metadata, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    details = {"desired": desired, "updated": updated, "available": available}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and \
                condition.get("reason") == "ProgressDeadlineExceeded":
            return RolloutStatus(False, "ProgressDeadlineExceeded",
                                 condition.get("message") or "rollout exceeded its deadline",
                                 details)
    for pod in new_pods:
        for container in _get(pod, "status", "containerStatuses") or []:
            waiting = _get(container, "state", "waiting") or {}
            if waiting.get("reason") in FAILING_REASONS:
                name = _get(pod, "metadata", "name")
                message = f"pod {name}: container {container.get('name')} is " \
                          f"{waiting['reason']}"
                if waiting.get("message"):
                    message += f": {waiting['message']}"
                return RolloutStatus(False, waiting["reason"], message, details)
    observed = int(status.get("observedGeneration") or 0)
    if observed < int(metadata.get("generation") or 0):
        return RolloutStatus(False, None, "waiting for the controller to see the change",
                             details)
    if updated == available == desired and total == desired:
        return RolloutStatus(True, None, f"{available} of {desired} replicas updated and"
                                         " available", details)
    return RolloutStatus(False, None, f"{updated} updated, {available} available of"
                                      f" {desired} replicas", details)


def current_replica_set(deployment: dict[str, Any],
                        replica_sets: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ReplicaSet of the Deployment's current revision, if the controller made it."""
    revision = _get(deployment, "metadata", "annotations", REVISION)
    uid = _get(deployment, "metadata", "uid")
    for replica_set in replica_sets:
        owners = _get(replica_set, "metadata", "ownerReferences") or []
        owned = not uid or any(o.get("uid") == uid for o in owners)
        if owned and _get(replica_set, "metadata", "annotations", REVISION) == revision:
            return replica_set
    return None


def history_of(deployment: dict[str, Any], replica_sets: list[dict[str, Any]],
               container: str) -> list[dict[str, Any]]:
    """Revisions with change-cause and image, oldest first, like `kubectl rollout history`."""
    uid = _get(deployment, "metadata", "uid")
    rows = []
    for replica_set in replica_sets:
        owners = _get(replica_set, "metadata", "ownerReferences") or []
        if uid and not any(o.get("uid") == uid for o in owners):
            continue
        annotations = _get(replica_set, "metadata", "annotations") or {}
        images = [c.get("image") for c in _get(replica_set, "spec", "template", "spec",
                                                "containers") or []
                  if c.get("name") == container]
        rows.append({"revision": int(annotations.get(REVISION) or 0),
                     "changeCause": annotations.get(CHANGE_CAUSE),
                     "image": images[0] if images else None,
                     "replicas": int(_get(replica_set, "status", "replicas") or 0)})
    return sorted(rows, key=lambda row: row["revision"])


def _patch(container: str, image: str, annotations: dict[str, Any],
           resource_version: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"annotations": annotations}
    if resource_version:
        metadata["resourceVersion"] = resource_version  # optimistic concurrency: 409 if stale
    return {"metadata": metadata,
            "spec": {"template": {"spec": {"containers": [{"name": container,
                                                           "image": image}]}}}}


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
