"""The `canary` target kind: a canary Deployment beside the target's (stable) Deployment,
behind the same Service, its share of the pods set step by step.

The canary copies the stable Deployment's spec (`siblings.sibling`, labelled
`release-workflow.io/track=canary`, named `<deployment>-canary`); its pods carry the stable
pods' labels, so the Service sends them their share of the requests. The stable
Deployment's pod template is changed only by `deploy` (the promotion) and `restore`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .deployments import DeployResult
from .errors import DeploymentNotFound, InvalidTarget
from .namespace import Namespace, in_namespace
from .patcher import DeploymentPatcher
from .rollout import (
    CHANGE_CAUSE,
    DIGEST,
    PREVIOUS_IMAGE,
    RELEASE_ID,
    Snapshot,
    image_digest,
    pinned_image,
)
from .siblings import STABLE_REPLICAS, TRACK, canary_name, image_of, sibling

T = TypeVar("T")


@dataclass(frozen=True)
class Shifted:
    """What a step changed: the canary's and the stable Deployment's pods."""

    canary: str
    canary_pods: int
    stable_pods: int
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"canary": self.canary, "canaryPods": self.canary_pods,
                "stablePods": self.stable_pods, "changed": self.changed}


@dataclass(frozen=True)
class CanaryTarget(DeploymentPatcher):
    """A stable Deployment and its canary on one cluster: a Deployment target whose deploy
    is the promotion and whose restore is the abort; it snapshots, watches and verifies the
    stable Deployment as the patcher does."""

    KIND: ClassVar[str] = "canary"
    SHAPE: ClassVar[frozenset[str]] = frozenset({"kind", "deployment", "container"})

    @property
    def canary(self) -> str:
        return canary_name(self.target.deployment)

    def deploy(self, image: str, change_cause: str, release_id: str) -> DeployResult:
        """The promotion: the stable Deployment takes `image`, and the pods it had before
        the canary's first step."""
        def promote(namespace: Namespace) -> DeployResult:
            result = namespace.deployments.deploy(self.target, image, change_cause, release_id)
            before = self._stable_replicas(namespace, only_running=True)
            if before is not None:
                namespace.scale(self.target.deployment, before)
            return result

        return self._in_namespace(promote)

    def restore(self, snapshot: Mapping[str, Any], change_cause: str | None) -> DeployResult:
        """The abort: the canary to zero first (its pods leave the Service at once), then the
        stable Deployment's snapshot back, with the pods it had."""
        restored = Snapshot.from_dict(dict(snapshot))
        if restored.container != self.target.container:
            raise InvalidTarget("snapshot is of another container than the target")

        def abort(namespace: Namespace) -> DeployResult:
            namespace.scale(self.canary, 0)
            result = namespace.deployments.rollback(self.target, restored, change_cause)
            if restored.replicas:
                namespace.scale(self.target.deployment, restored.replicas)
            return result

        return self._in_namespace(abort)

    def shift(self, image: str, change_cause: str, release_id: str, canary_pods: int,
              stable_pods: int) -> Shifted:
        """Give the canary `canary_pods` pods of `image` (made from the stable Deployment
        when missing), then the stable Deployment `stable_pods`; idempotent."""
        pinned_image(image)

        def shift(namespace: Namespace) -> Shifted:
            stable = namespace.deployment(self.target.deployment)
            if stable is None:
                raise DeploymentNotFound(self.target.cluster, self.target.namespace,
                                         f"deployment {self.target.deployment} not found")
            canary = namespace.deployment(self.canary)
            starting = canary is None or not (canary.get("spec") or {}).get("replicas")
            before = (stable.get("spec") or {}).get("replicas") if starting \
                else self._stable_replicas(namespace)
            annotations = {
                CHANGE_CAUSE: change_cause, RELEASE_ID: release_id,
                DIGEST: image_digest(image) or "",
                PREVIOUS_IMAGE: image_of(stable, self.target.container),
                STABLE_REPLICAS: str(before if before is not None else stable_pods)}
            changed = False
            if canary is None:
                namespace.create_deployment(sibling(
                    stable, self.canary, (TRACK, "canary"), self.target.container, image,
                    canary_pods, annotations))
                changed = True
            elif image_of(canary, self.target.container) != image \
                    or (canary.get("spec") or {}).get("replicas") != canary_pods:
                namespace.patch_deployment(self.canary, {
                    "metadata": {"annotations": annotations},
                    "spec": {"replicas": canary_pods, "template": {"spec": {"containers": [
                        {"name": self.target.container, "image": image}]}}}})
                changed = True
            changed = namespace.scale(self.target.deployment, stable_pods) or changed
            return Shifted(self.canary, canary_pods, stable_pods, changed)

        return self._in_namespace(shift)

    def retire(self, deployment: str) -> bool:
        """Remove the canary after a promotion; False when it was gone."""
        if deployment != self.canary:
            raise InvalidTarget(f"a canary target retires {self.canary}, not {deployment}")
        return self._in_namespace(lambda namespace: namespace.delete_deployment(self.canary))

    def _stable_replicas(self, namespace: Namespace, only_running: bool = False) -> int | None:
        """The stable's pods before the canary's first step (None: no canary, or with
        `only_running` one at zero pods)."""
        canary = namespace.deployment(self.canary) or {}
        if only_running and not (canary.get("spec") or {}).get("replicas"):
            return None
        value = ((canary.get("metadata") or {}).get("annotations") or {}).get(STABLE_REPLICAS)
        return int(value) if isinstance(value, str) and value.isdigit() else None

    def _in_namespace(self, work: Callable[[Namespace], T]) -> T:
        return in_namespace(self.connection, self.secrets, self.target, work)
