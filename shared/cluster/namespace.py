"""Deployments and Services of one namespace, by name, as the API's JSON: what the canary
and blue-green kinds read, create, scale, patch and delete. Errors are `errors.py`'s."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from kubernetes.client.api.apps_v1_api import AppsV1Api
from kubernetes.client.api.core_v1_api import CoreV1Api

from .clusters import with_deployments
from .deployments import STRATEGIC_MERGE, Deployments, DeploymentTarget, api_errors, as_json
from .errors import DeploymentNotFound
from .rollout import RolloutStatus, current_replica_set
from .siblings import template_hash

T = TypeVar("T")


class Namespace:
    """One namespace of one cluster, reached through `deployments`' API client."""

    def __init__(self, deployments: Deployments, cluster: str, namespace: str) -> None:
        self.deployments = deployments
        self.cluster = cluster
        self.name = namespace
        api = deployments.api_client
        self._api, self._apps, self._core = api, AppsV1Api(api), CoreV1Api(api)

    def deployment(self, name: str) -> dict[str, Any] | None:
        """The Deployment, or None when there is none of that name."""
        try:
            with api_errors(self.cluster, self.name, f"deployment {name}", "read deployment"):
                return as_json(self._api, self._apps.read_namespaced_deployment(name, self.name))
        except DeploymentNotFound:
            return None

    def create_deployment(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        with api_errors(self.cluster, self.name, f"deployment {name}", "create deployment"):
            # The client sends a dict as it is: no round trip through its models.
            self._apps.create_namespaced_deployment(self.name, cast(Any, body))

    def patch_deployment(self, name: str, patch: dict[str, Any]) -> None:
        with api_errors(self.cluster, self.name, f"deployment {name}", "patch deployment"):
            self._apps.patch_namespaced_deployment(name, self.name, patch,
                                                   _content_type=STRATEGIC_MERGE)

    def scale(self, name: str, replicas: int) -> bool:
        """Set the Deployment's replicas; False when it already had them."""
        current = self.deployment(name)
        if current is None or (current.get("spec") or {}).get("replicas") == replicas:
            return False
        self.patch_deployment(name, {"spec": {"replicas": replicas}})
        return True

    def delete_deployment(self, name: str) -> bool:
        """Delete it and (in the background) its ReplicaSets and pods; False when gone."""
        if self.deployment(name) is None:
            return False
        with api_errors(self.cluster, self.name, f"deployment {name}", "delete deployment"):
            self._apps.delete_namespaced_deployment(name, self.name,
                                                    propagation_policy="Background")
        return True

    def service(self, name: str) -> dict[str, Any]:
        with api_errors(self.cluster, self.name, f"service {name}", "read service"):
            return as_json(self._api, self._core.read_namespaced_service(name, self.name))

    def patch_service(self, name: str, patch: dict[str, Any]) -> None:
        with api_errors(self.cluster, self.name, f"service {name}", "patch service"):
            self._core.patch_namespaced_service(name, self.name, patch,
                                                _content_type=STRATEGIC_MERGE)

    def current_hash(self, name: str) -> str | None:
        """The `pod-template-hash` of the Deployment's current ReplicaSet (None: none yet)."""
        deployment = self.deployment(name)
        if deployment is None:
            return None
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        with api_errors(self.cluster, self.name, f"deployment {name}", "list replicasets"):
            replica_sets = as_json(self._api, self._apps.list_namespaced_replica_set(
                self.name, label_selector=selector)).get("items") or []
        return template_hash(current_replica_set(deployment, replica_sets))

    def rollout(self, name: str, container: str) -> RolloutStatus:
        """One look at the Deployment's rollout."""
        return self.deployments.rollout_status(
            DeploymentTarget(self.cluster, self.name, name, container))

    def target(self, name: str, container: str) -> DeploymentTarget:
        return DeploymentTarget(self.cluster, self.name, name, container)


def in_namespace(connection: Mapping[str, Any], secrets: Mapping[str, Any],
                 target: DeploymentTarget, work: Callable[[Namespace], T]) -> T:
    """Run `work` on the target's namespace, through the cluster's cached client."""
    return with_deployments(connection, secrets, lambda deployments: work(
        Namespace(deployments, target.cluster, target.namespace)))
