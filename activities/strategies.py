"""The steps only blue-green and canary releases take: run the new version in the idle
slot, point a Service at a slot, give the canary its share, retire what no longer serves.

Each opens the request's target through its kind (a `blueGreen` or `canary` target, see
shared/cluster/targets.py), is safe to retry (a step already in place writes nothing) and
returns plain JSON. A request for the wrong kind is refused before any cluster call.
"""

from __future__ import annotations

from typing import Any, TypeVar

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.cluster.bluegreen import BlueGreenTarget
from shared.cluster.canary import CanaryTarget
from shared.cluster.errors import InvalidTarget
from shared.cluster.requests import ClusterRequest
from shared.cluster.targets import KINDS

bp = blueprint()
T = TypeVar("T", BlueGreenTarget, CanaryTarget)
MAX_PODS = 1000


@bp.activity_trigger(input_name="request")
@marks_failures
def deploy_slot(request: dict[str, Any]) -> dict[str, Any]:
    """Run `image` in the blue-green target's idle slot (no switch): which slot, beside which."""
    req = ClusterRequest.from_dict(request)
    target = _opened(req, BlueGreenTarget)
    return target.stage(req.text("image"), req.text("changeCause"),
                        req.text("releaseId")).to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def switch_service(request: dict[str, Any]) -> dict[str, Any]:
    """Point `service` (the active or the preview one) at `slot`'s pods: one patch."""
    req = ClusterRequest.from_dict(request)
    return _opened(req, BlueGreenTarget).switch(req.text("service"), req.text("slot")).to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def shift_canary(request: dict[str, Any]) -> dict[str, Any]:
    """Give the canary `canaryPods` pods of `image` and the stable Deployment `stablePods`."""
    req = ClusterRequest.from_dict(request)
    target = _opened(req, CanaryTarget)
    return target.shift(req.text("image"), req.text("changeCause"), req.text("releaseId"),
                        _pods(req, "canaryPods"), _pods(req, "stablePods")).to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def retire_deployment(request: dict[str, Any]) -> dict[str, Any]:
    """Scale a blue-green slot that no longer serves to zero, or remove a promoted canary."""
    req = ClusterRequest.from_dict(request)
    target = KINDS.open(req)
    if not isinstance(target, BlueGreenTarget | CanaryTarget):
        raise InvalidTarget(f"retire_deployment needs a blueGreen or canary target,"
                            f" not {target.kind}")
    deployment = req.text("deployment")
    return {"deployment": deployment, "changed": target.retire(deployment)}


def _opened(req: ClusterRequest, kind: type[T]) -> T:
    target = KINDS.open(req)
    if not isinstance(target, kind):
        raise InvalidTarget(f"this step needs a {kind.KIND} target, not {target.kind}")
    return target


def _pods(req: ClusterRequest, field: str) -> int:
    value = req.body.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PODS:
        raise InvalidTarget(f"{field} must be a whole number of pods from 0 to {MAX_PODS}")
    return value
