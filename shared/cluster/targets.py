"""Which `DeployTarget` implementation serves a request: chosen by the target's kind.

A target names its kind (`"kind": "helm"`, as Helm targets do) or, as every Deployment
target's snapshot does, is known by its shape: a target with `deployment` and `container` is
a `deployment`. A target that names no kind and fits no shape is read as the default kind,
whose parser says what is missing. A Deployment target whose environment releases with a
blue-green or canary strategy names the `blueGreen` or `canary` kind (`cluster_request`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shared.deploy.target import DeployTarget

from .bluegreen import BlueGreenTarget
from .canary import CanaryTarget
from .errors import InvalidTarget
from .patcher import DeploymentPatcher
from .requests import ClusterRequest


@dataclass(frozen=True)
class TargetKind:
    """A kind of target: its name, the keys that identify it, and how to open one."""

    name: str
    shape: frozenset[str]
    open: Callable[[ClusterRequest], DeployTarget]

    def fits(self, target: dict[str, Any]) -> bool:
        return self.shape <= target.keys()


class TargetKinds:
    """The registered kinds; `default` serves targets that name no kind and fit no shape."""

    def __init__(self, default: TargetKind) -> None:
        self.default = default
        self._kinds: dict[str, TargetKind] = {default.name: default}

    def kind_of(self, target: dict[str, Any]) -> TargetKind:
        named = target.get("kind")
        if named is not None:
            if named not in self._kinds:
                known = ", ".join(sorted(self._kinds))
                raise InvalidTarget(f"target kind {named!r} is not known (known: {known})")
            return self._kinds[named]
        return next((kind for kind in self._kinds.values() if kind.fits(target)),
                     self.default)

    def open(self, request: ClusterRequest) -> DeployTarget:
        """The implementation for the request's target (InvalidTarget when it cannot be)."""
        return self.kind_of(request.target).open(request)

    def register(self, kind: TargetKind) -> None:
        """Serve `kind` from now on; a name is registered once."""
        if kind.name in self._kinds:
            raise ValueError(f"target kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind

    @contextmanager
    def registered(self, kind: TargetKind) -> Iterator[TargetKind]:
        """`kind` is served while the block runs (a kind under test)."""
        self.register(kind)
        try:
            yield kind
        finally:
            del self._kinds[kind.name]


DEPLOYMENT = TargetKind(DeploymentPatcher.KIND, DeploymentPatcher.SHAPE, DeploymentPatcher.open)
def _open_helm(request: ClusterRequest) -> DeployTarget:
    """A Helm target; Helm's SDK (its Go runtime) loads with the first one a worker opens."""
    from shared.helm.target import HelmChart

    return HelmChart.open(request)


HELM = TargetKind("helm", frozenset({"kind", "release", "chart"}), _open_helm)
KINDS = TargetKinds(DEPLOYMENT)
KINDS.register(HELM)
KINDS.register(TargetKind(CanaryTarget.KIND, CanaryTarget.SHAPE, CanaryTarget.open))
KINDS.register(TargetKind(BlueGreenTarget.KIND, BlueGreenTarget.SHAPE, BlueGreenTarget.open))
