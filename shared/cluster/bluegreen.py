"""The `blueGreen` target kind: two slots, the target's Deployment and `<deployment>-green`,
and the active Service's selector naming the one that serves.

A Service is pointed at a slot by that slot's current `pod-template-hash` (siblings.py): one
patch switches, one switches back. The first change pins the active Service to the slot that
serves already, so the new slot's pods (labelled like the old ones) get no traffic before
the switch. `deploy` and `restore` make an image the active one: the slot that will run it
is named on the active Service (`release-workflow.io/switch-to`) and the switch happens as
soon as that slot is ready, when `await_ready` sees it (or at once when it already is).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from shared.deploy.evidence import Evidence

from .deployments import DeploymentTarget, DeployResult
from .errors import ClusterError, DeploymentNotFound, InvalidTarget
from .namespace import Namespace, in_namespace
from .requests import ClusterRequest
from .rollout import (
    CHANGE_CAUSE,
    DIGEST,
    PREVIOUS_IMAGE,
    RELEASE_ID,
    RolloutStatus,
    Snapshot,
    image_digest,
    pinned_image,
    rollout_status,
    snapshot_of,
)
from .siblings import (
    SLOT,
    SWITCH_TO,
    image_of,
    pending_switch,
    require_selector,
    selected_hash,
    selector_patch,
    sibling,
    slot_names,
)
from .verification import run_checks

T = TypeVar("T")


@dataclass(frozen=True)
class SlotSnapshot:
    """What the active slot runs, which slot it is, and its pods' `pod-template-hash`."""

    snapshot: Snapshot
    slot: str
    hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.snapshot.to_dict(), "slot": self.slot, "hash": self.hash}


@dataclass(frozen=True)
class Staged:
    """The new version in the idle slot: which slot, beside which active one."""

    slot: str
    active: str
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "active": self.active, "changed": self.changed}


@dataclass(frozen=True)
class Switched:
    """A Service pointed at a slot's pods."""

    service: str
    slot: str
    hash: str
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "slot": self.slot, "hash": self.hash,
                "changed": self.changed}


@dataclass(frozen=True)
class BlueGreenTarget:
    """Two slots of one Deployment, an active and a preview Service, on one cluster."""

    KIND: ClassVar[str] = "blueGreen"
    SHAPE: ClassVar[frozenset[str]] = frozenset({"kind", "activeService", "previewService"})

    target: DeploymentTarget
    active_service: str
    preview_service: str
    connection: Mapping[str, Any]
    secrets: Mapping[str, Any]

    @classmethod
    def open(cls, request: ClusterRequest) -> BlueGreenTarget:
        services = [request.target.get(key) for key in ("activeService", "previewService")]
        if not all(isinstance(name, str) and name for name in services):
            raise InvalidTarget("a blueGreen target needs activeService and previewService")
        return cls(DeploymentTarget.from_dict(request.target), str(services[0]),
                   str(services[1]), request.connection, request.secrets)

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def slots(self) -> tuple[str, str]:
        return slot_names(self.target.deployment)

    def snapshot(self) -> SlotSnapshot:
        def look(namespace: Namespace) -> SlotSnapshot:
            active = self._active(namespace)
            return SlotSnapshot(namespace.deployments.snapshot(self._slot(active)), active,
                                namespace.current_hash(active))

        return self._in_namespace(look)

    def deploy(self, image: str, change_cause: str, release_id: str) -> DeployResult:
        """Make `image` the active one: run it in the idle slot; the active Service switches
        when that slot is ready (`await_ready`). No write when the active slot runs it."""
        def deploy(namespace: Namespace) -> DeployResult:
            active = self._active(namespace)
            current = namespace.deployments.snapshot(self._slot(active))
            if current.image == image:
                return DeployResult(False, image, current.image, current.revision)
            idle = self._other(active)
            self._put(namespace, idle, active, image, change_cause, release_id)
            self._switch_when_ready(namespace, idle)
            return DeployResult(True, image, current.image, current.revision)

        pinned_image(image)
        return self._in_namespace(deploy)

    def await_ready(self, deadline: float, max_wait: float) -> RolloutStatus:
        """The rollout of the slot the active Service waits for (else of the active slot);
        when that slot is ready, the Service switches to it and the other slot scales down."""
        def look(namespace: Namespace) -> RolloutStatus:
            pending = pending_switch(namespace.service(self.active_service))
            watched = pending or self._active(namespace)
            status = namespace.deployments.await_rollout(self._slot(watched), deadline,
                                                         max_wait=max_wait)
            if pending is None or not (status.done or status.failed):
                return status
            if status.failed:  # the switch is dropped: the active slot keeps serving
                namespace.patch_service(self.active_service,
                                        {"metadata": {"annotations": {SWITCH_TO: None}}})
                return status
            self._switch(namespace, self.active_service, pending)
            namespace.scale(self._other(pending), 0)
            return RolloutStatus(True, None, f"{status.message}; {self.active_service} now"
                                             f" selects {pending}", status.details)

        return self._in_namespace(look)

    def verify(self, checks: Sequence[Any], secrets: Mapping[str, Any]) -> Evidence:
        return run_checks(checks, secrets)

    def restore(self, snapshot: Mapping[str, Any], change_cause: str | None) -> DeployResult:
        """Make the snapshot's image active again: its slot (when it still runs it) scaled
        up and, when ready, switched to in one patch, then the other slot scaled down."""
        restored = Snapshot.from_dict(dict(snapshot))
        if restored.container != self.target.container:
            raise InvalidTarget("snapshot is of another container than the target")
        hint = snapshot.get("slot")

        def restore(namespace: Namespace) -> DeployResult:
            back = self._switch_back(namespace, restored, hint, snapshot.get("hash"))
            if back is not None:
                return back
            active = self._active(namespace)
            current = namespace.deployments.snapshot(self._slot(active))
            if current.image == restored.image:  # never switched: the new slot goes
                if pending_switch(namespace.service(self.active_service)):
                    namespace.patch_service(self.active_service,
                                            {"metadata": {"annotations": {SWITCH_TO: None}}})
                scaled = namespace.scale(self._other(active), 0)
                return DeployResult(scaled, restored.image, current.image, current.revision)
            slot = hint if hint in self.slots and hint != active else self._other(active)
            running = namespace.deployment(slot)
            if running is None or image_of(running, self.target.container) != restored.image:
                self._put(namespace, slot, active, restored.image,
                          change_cause or f"rollback to {restored.image}",
                          restored.annotations.get(RELEASE_ID) or "")
            else:
                namespace.scale(slot, max(restored.replicas, current.replicas, 1))
            if namespace.rollout(slot, self.target.container).done:
                self._switch(namespace, self.active_service, slot)  # the one patch back
                namespace.scale(active, 0)
            else:
                self._switch_when_ready(namespace, slot)
            return DeployResult(True, restored.image, current.image, current.revision)

        return self._in_namespace(restore)

    def stage(self, image: str, change_cause: str, release_id: str) -> Staged:
        """Run `image` in the idle slot beside the active one (no switch); idempotent."""
        pinned_image(image)

        def stage(namespace: Namespace) -> Staged:
            active = self._active(namespace)
            idle = self._other(active)
            changed = self._put(namespace, idle, active, image, change_cause, release_id)
            return Staged(idle, active, changed)

        return self._in_namespace(stage)

    def switch(self, service: str, slot: str) -> Switched:
        """Point `service` (the active or the preview one) at `slot`'s pods: one patch."""
        if service not in (self.active_service, self.preview_service):
            raise InvalidTarget(f"service {service} is neither {self.active_service} nor"
                                f" {self.preview_service}")
        self._slot(slot)
        return self._in_namespace(lambda namespace: self._switch(namespace, service, slot))

    def retire(self, deployment: str) -> bool:
        """Scale a slot that no longer serves to zero; the serving slot is refused."""
        self._slot(deployment)

        def retire(namespace: Namespace) -> bool:
            if deployment == self._active(namespace):
                raise InvalidTarget(f"{deployment} is the slot {self.active_service} selects:"
                                    " it is not scaled down")
            return namespace.scale(deployment, 0)

        return self._in_namespace(retire)

    # --- plumbing --------------------------------------------------------------------------

    def _switch_back(self, namespace: Namespace, restored: Snapshot, slot: Any,
                     hash_: Any) -> DeployResult | None:
        """The fast way back: the snapshot's slot still runs its revision, all pods ready,
        so the active Service is patched to its hash after one read; None when it cannot
        be (the slot changed, was scaled down or is not ready: `restore` looks closer)."""
        if slot not in self.slots or not isinstance(hash_, str) or not hash_:
            return None
        running = namespace.deployment(slot)
        if running is None or image_of(running, self.target.container) != restored.image \
                or snapshot_of(running, self.target.container).revision != restored.revision \
                or not rollout_status(running, []).done:
            return None
        namespace.patch_service(self.active_service, selector_patch(hash_))  # the one patch
        other = self._other(slot)
        previous = namespace.deployment(other)
        namespace.scale(other, 0)
        return DeployResult(True, restored.image, image_of(previous, self.target.container)
                            if previous else "", restored.revision)

    def _active(self, namespace: Namespace) -> str:
        """The slot the active Service selects: by its `pod-template-hash`, else the
        target's own Deployment (before the first switch)."""
        service = namespace.service(self.active_service)
        require_selector(service, self.active_service)
        chosen = selected_hash(service)
        if chosen is None:
            return self.slots[0]
        for slot in self.slots:
            if namespace.current_hash(slot) == chosen:
                return slot
        raise ClusterError(self.target.cluster, self.target.namespace,
                           f"service {self.active_service} selects pod-template-hash {chosen},"
                           f" which neither {self.slots[0]} nor {self.slots[1]} runs now (was a"
                           " slot changed outside a release?); point it at one slot")

    def _put(self, namespace: Namespace, slot: str, active: str, image: str,
             change_cause: str, release_id: str) -> bool:
        """`slot` runs `image` with the active slot's pods (made from it when missing);
        the active Service is pinned first, so the new pods get no traffic yet."""
        self._pin(namespace, active)
        source = namespace.deployment(active)
        if source is None:
            raise DeploymentNotFound(self.target.cluster, self.target.namespace,
                                     f"deployment {active} not found")
        replicas = max(int((source.get("spec") or {}).get("replicas") or 1), 1)
        existing = namespace.deployment(slot)
        if existing is None:
            if slot == self.slots[0]:
                raise DeploymentNotFound(self.target.cluster, self.target.namespace,
                                         f"deployment {slot} not found")
            namespace.create_deployment(sibling(source, slot, (SLOT, "green"),
                                                self.target.container, image, replicas, {
                CHANGE_CAUSE: change_cause, RELEASE_ID: release_id,
                DIGEST: image_digest(image) or "",
                PREVIOUS_IMAGE: image_of(source, self.target.container)}))
            return True
        deployed = namespace.deployments.deploy(self._slot(slot), image, change_cause,
                                                release_id)
        return namespace.scale(slot, replicas) or deployed.changed

    def _pin(self, namespace: Namespace, active: str) -> None:
        service = namespace.service(self.active_service)
        if selected_hash(service) is None:
            self._switch(namespace, self.active_service, active)

    def _switch(self, namespace: Namespace, service: str, slot: str) -> Switched:
        hash_ = namespace.current_hash(slot)
        if hash_ is None:
            raise ClusterError(self.target.cluster, self.target.namespace,
                               f"{slot} has no ReplicaSet yet: {service} cannot select it")
        current = namespace.service(service)
        require_selector(current, service)
        if selected_hash(current) == hash_ and not pending_switch(current):
            return Switched(service, slot, hash_, False)
        namespace.patch_service(service, selector_patch(hash_))
        return Switched(service, slot, hash_, True)

    def _switch_when_ready(self, namespace: Namespace, slot: str) -> None:
        namespace.patch_service(self.active_service,
                                {"metadata": {"annotations": {SWITCH_TO: slot}}})

    def _slot(self, name: str) -> DeploymentTarget:
        if name not in self.slots:
            raise InvalidTarget(f"{name} is not a slot of {self.target.deployment}"
                                f" ({self.slots[0]}, {self.slots[1]})")
        return DeploymentTarget(self.target.cluster, self.target.namespace, name,
                                self.target.container)

    def _other(self, slot: str) -> str:
        return self.slots[1] if slot == self.slots[0] else self.slots[0]

    def _in_namespace(self, work: Callable[[Namespace], T]) -> T:
        return in_namespace(self.connection, self.secrets, self.target, work)
