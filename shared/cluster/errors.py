"""Typed cluster errors naming cluster, namespace and object; never a credential."""

from __future__ import annotations

from shared.failure_kinds import Permanent


class ClusterError(Exception):
    """A Kubernetes call failed; `str()` says which cluster, namespace and why."""

    def __init__(self, cluster: str, namespace: str, reason: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.reason = reason
        where = f"cluster {cluster}, namespace {namespace}" if namespace else f"cluster {cluster}"
        super().__init__(f"{where}: {reason}")


class ClusterAuthError(Permanent, ClusterError):
    """401: the cluster rejected the credentials."""


class ClusterForbidden(Permanent, ClusterError):
    """403: the identity may not do this in that namespace."""


class DeploymentNotFound(Permanent, ClusterError):
    """The Deployment or its container does not exist."""


class ClusterUnavailable(ClusterError):
    """The API server could not be reached or kept failing."""


class InvalidTarget(Permanent, ValueError):
    """A deployment target or check definition that cannot be used."""
