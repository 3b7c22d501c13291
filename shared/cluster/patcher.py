"""The `deployment` target kind: patch the image of one container of a Deployment.

The first implementation of shared/deploy/target.py's `DeployTarget`, a thin wrapper over
`Deployments` (the I/O) and `rollout` (the rules); its results keep the JSON the deployment
activities have always returned. Verification runs the environment's HTTP checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from shared.deploy.evidence import Evidence

from .clusters import with_deployments
from .deployments import DeploymentTarget, DeployResult
from .errors import InvalidTarget
from .requests import ClusterRequest
from .rollout import RolloutStatus, Snapshot
from .verification import run_checks


@dataclass(frozen=True)
class DeploymentPatcher:
    """One Deployment container on one cluster, reached with the environment's secrets."""

    KIND: ClassVar[str] = "deployment"
    SHAPE: ClassVar[frozenset[str]] = frozenset({"deployment", "container"})

    target: DeploymentTarget
    connection: Mapping[str, Any]
    secrets: Mapping[str, Any]

    @classmethod
    def open(cls, request: ClusterRequest) -> DeploymentPatcher:
        return cls(DeploymentTarget.from_dict(request.target), request.connection,
                   request.secrets)

    @property
    def kind(self) -> str:
        return self.KIND

    def snapshot(self) -> Snapshot:
        return with_deployments(self.connection, self.secrets,
                                lambda d: d.snapshot(self.target))

    def deploy(self, image: str, change_cause: str, release_id: str) -> DeployResult:
        return with_deployments(self.connection, self.secrets,
                                lambda d: d.deploy(self.target, image, change_cause, release_id))

    def await_ready(self, deadline: float, max_wait: float) -> RolloutStatus:
        return with_deployments(
            self.connection, self.secrets,
            lambda d: d.await_rollout(self.target, deadline, max_wait=max_wait))

    def verify(self, checks: Sequence[Any], secrets: Mapping[str, Any]) -> Evidence:
        return run_checks(checks, secrets)

    def restore(self, snapshot: Mapping[str, Any], change_cause: str | None) -> DeployResult:
        restored = Snapshot.from_dict(snapshot if isinstance(snapshot, dict) else {})
        if restored.container != self.target.container:
            raise InvalidTarget("snapshot is of another container than the target")
        return with_deployments(self.connection, self.secrets,
                                lambda d: d.rollback(self.target, restored, change_cause))
