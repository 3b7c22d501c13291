"""Deployments of one cluster: snapshot, deploy by digest, rollout watch, rollback, history.

Every write is a strategic-merge patch of one container's image and our
annotations, carrying the resourceVersion it was computed from, so a concurrent
change answers 409 and the decision is made again on fresh state. API errors
become the typed errors of `errors.py`, naming cluster and namespace.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kubernetes import client

# By module, not as `client.AppsV1Api`: the package loads those lazily, with every model they
# name (about 0.5 s), which would land on the first release's first deploy instead of on the
# worker's start, where importing the app belongs.
from kubernetes.client.api.apps_v1_api import AppsV1Api
from kubernetes.client.api.core_v1_api import CoreV1Api
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from .errors import (
    ClusterAuthError,
    ClusterError,
    ClusterForbidden,
    ClusterUnavailable,
    DeploymentNotFound,
    InvalidTarget,
)
from .rollout import (
    CHANGE_CAUSE,
    OUR_ANNOTATIONS,
    RolloutStatus,
    Snapshot,
    current_replica_set,
    deploy_patch,
    history_of,
    pinned_image,
    rollback_patch,
    rollout_status,
    snapshot_of,
)

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
CONFLICT_ATTEMPTS = 5


@dataclass(frozen=True)
class DeploymentTarget:
    """Which container of which Deployment, in which namespace of which cluster."""

    cluster: str
    namespace: str
    deployment: str
    container: str

    @classmethod
    def from_dict(cls, data: Any) -> DeploymentTarget:
        if not isinstance(data, dict):
            raise InvalidTarget("target must be a JSON object")
        keys = ("cluster", "namespace", "deployment", "container")
        values = {key: value for key in keys
                  if isinstance(value := data.get(key), str) and value}
        missing = [key for key in keys if key not in values]
        if missing:
            raise InvalidTarget(f"target needs {', '.join(missing)}")
        return cls(**values)

    def to_dict(self) -> dict[str, str]:
        return {"cluster": self.cluster, "namespace": self.namespace,
                "deployment": self.deployment, "container": self.container}


@dataclass(frozen=True)
class DeployResult:
    """What a deploy or rollback changed."""

    changed: bool
    image: str
    previous_image: str
    revision_before: int

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "image": self.image,
                "previousImage": self.previous_image, "revisionBefore": self.revision_before}


class Deployments:
    """Deployment operations over one API client."""

    def __init__(self, api_client: client.ApiClient, *, poll_interval: float = 1.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._api = api_client
        self._apps = AppsV1Api(api_client)
        self._core = CoreV1Api(api_client)
        self._poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep

    def snapshot(self, target: DeploymentTarget) -> Snapshot:
        return self._snapshot(target, self._read(target))

    def deploy(self, target: DeploymentTarget, image: str, change_cause: str,
               release_id: str) -> DeployResult:
        """Point the container at `image` (pinned by digest); no write when already there."""
        pinned_image(image)

        def decide(current: Snapshot) -> dict[str, Any] | None:
            if current.image == image:
                return None
            return deploy_patch(current, image, change_cause, release_id,
                                current.resource_version)

        return self._write(target, image, decide)

    def rollback(self, target: DeploymentTarget, snapshot: Snapshot,
                 change_cause: str | None = None) -> DeployResult:
        """Restore the snapshot's image and annotations; no write when they are in place."""
        cause = change_cause or f"rollback to revision {snapshot.revision}: {snapshot.image}"

        def decide(current: Snapshot) -> dict[str, Any] | None:
            restored = current.image == snapshot.image and all(
                current.annotations.get(k) == snapshot.annotations.get(k)
                for k in OUR_ANNOTATIONS if k != CHANGE_CAUSE)
            if restored:
                return None
            return rollback_patch(snapshot, cause, current.resource_version)

        return self._write(target, snapshot.image, decide)

    def await_rollout(self, target: DeploymentTarget, deadline: float,
                      max_wait: float | None = None) -> RolloutStatus:
        """Poll until the rollout completes or fails, `max_wait` passes, or `deadline` (epoch)."""
        started = self._clock()
        while True:
            status = self.rollout_status(target)
            now = self._clock()
            if status.done or status.failed:
                return status
            if now >= deadline:
                return RolloutStatus(False, "DeadlineExceeded",
                                     f"rollout not complete by the deadline: {status.message}",
                                     status.details)
            if max_wait is not None and now - started >= max_wait:
                return status
            pause = min(self._poll_interval, deadline - now)
            if max_wait is not None:
                pause = min(pause, max(0.0, started + max_wait - now))
            self._sleep(max(pause, 0.0))

    def rollout_status(self, target: DeploymentTarget) -> RolloutStatus:
        """One look at the rollout: the Deployment, and the new ReplicaSet's pods if needed."""
        deployment = self._read(target)
        status = rollout_status(deployment, [])
        if status.done or status.failed:
            return status
        with self._errors(target, "list replicasets"):
            selector = _selector(deployment)
            replica_sets = self._json(self._apps.list_namespaced_replica_set(
                target.namespace, label_selector=selector)).get("items") or []
        current = current_replica_set(deployment, replica_sets)
        if current is None:
            return status
        template_hash = ((current.get("metadata") or {}).get("labels") or {}).get(
            "pod-template-hash")
        pod_selector = f"{selector},pod-template-hash={template_hash}" if template_hash \
            else selector
        with self._errors(target, "list pods"):
            pods = self._json(self._core.list_namespaced_pod(
                target.namespace, label_selector=pod_selector)).get("items") or []
        return rollout_status(deployment, pods)

    def pod_log(self, namespace: str, pod: str, tail_lines: int) -> str:
        """The last lines of a pod's log; "" when the pod has none to give (gone, waiting)."""
        try:
            return str(self._core.read_namespaced_pod_log(pod, namespace,
                                                          tail_lines=tail_lines))
        except (ApiException, TransportError):
            return ""

    def history(self, target: DeploymentTarget) -> list[dict[str, Any]]:
        deployment = self._read(target)
        with self._errors(target, "list replicasets"):
            replica_sets = self._json(self._apps.list_namespaced_replica_set(
                target.namespace, label_selector=_selector(deployment))).get("items") or []
        return history_of(deployment, replica_sets, target.container)

    # --- plumbing --------------------------------------------------------------------------

    def _write(self, target: DeploymentTarget, image: str,
               decide: Callable[[Snapshot], dict[str, Any] | None]) -> DeployResult:
        for _ in range(CONFLICT_ATTEMPTS):
            current = self.snapshot(target)
            patch = decide(current)
            if patch is None:
                return DeployResult(False, image, current.image, current.revision)
            try:
                with self._errors(target, "patch deployment"):
                    self._apps.patch_namespaced_deployment(
                        target.deployment, target.namespace, patch,
                        _content_type=STRATEGIC_MERGE)
            except Conflict:
                continue
            return DeployResult(True, image, current.image, current.revision)
        raise ClusterError(target.cluster, target.namespace,
                           f"deployment {target.deployment} kept changing under us"
                           f" ({CONFLICT_ATTEMPTS} conflicts in a row); try again")

    def _snapshot(self, target: DeploymentTarget, deployment: dict[str, Any]) -> Snapshot:
        try:
            return snapshot_of(deployment, target.container)
        except InvalidTarget as missing:
            raise DeploymentNotFound(target.cluster, target.namespace,
                                     f"deployment {target.deployment}: {missing}") from None

    def _read(self, target: DeploymentTarget) -> dict[str, Any]:
        with self._errors(target, "read deployment"):
            return self._json(self._apps.read_namespaced_deployment(target.deployment,
                                                                    target.namespace))

    def _json(self, model: Any) -> dict[str, Any]:
        return as_json(self._api, model)

    @contextmanager
    def _errors(self, target: DeploymentTarget, action: str) -> Iterator[None]:
        with api_errors(target.cluster, target.namespace, f"deployment {target.deployment}",
                        action):
            yield

    @property
    def api_client(self) -> client.ApiClient:
        """The API client these Deployments are reached through."""
        return self._api


@contextmanager
def api_errors(cluster: str, namespace: str, subject: str, action: str) -> Iterator[None]:
    """The typed error of `errors.py` for an API failure on `subject` ("deployment web")."""
    where = (cluster, namespace)
    try:
        yield
    except ApiException as failed:
        reason = _status_message(failed)
        if failed.status == 401:
            raise ClusterAuthError(*where, f"credentials rejected (401) on {action}:"
                                           f" {reason}") from None
        if failed.status == 403:
            raise ClusterForbidden(*where, f"forbidden to {action} {subject.split()[-1]}"
                                           f" (403): {reason}") from None
        if failed.status == 404:
            raise DeploymentNotFound(*where, f"{subject} not found (404): {reason}") from None
        if failed.status == 409:
            raise Conflict() from None
        raise ClusterError(*where, f"{action} failed ({failed.status}): {reason}") from None
    except TransportError as unreachable:
        raise ClusterUnavailable(*where, f"cannot reach the API server on {action}:"
                                         f" {type(unreachable).__name__}") from None


def as_json(api: client.ApiClient, model: Any) -> dict[str, Any]:
    """An API model as the API's JSON (camelCase dicts)."""
    # kubernetes ships py.typed but leaves sanitize_for_serialization unannotated
    data: dict[str, Any] = api.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
    return data


class Conflict(Exception):
    """409: the object changed since it was read."""


def _selector(deployment: dict[str, Any]) -> str:
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _status_message(failed: ApiException) -> str:
    try:
        return str(json.loads(failed.body or "{}").get("message") or failed.reason)
    except ValueError:
        return str(failed.reason)

