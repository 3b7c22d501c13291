"""How an environment moves traffic to a new version: rolling, blue-green or canary.

Typed, with the plain-JSON snapshot form (`strategy_from_dict` / `to_dict`) and the pure
arithmetic of a canary's weights as replica counts. The runtime that patches Deployments
and Services lives elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

DEFAULT_SCALE_DOWN_DELAY = timedelta(seconds=30)  # Argo Rollouts' scaleDownDelaySeconds


def canary_pods(weight: int, replicas: int) -> int:
    """The canary's pods for `weight` % of `replicas` pods, rounded half up (41 % of 10: 4)."""
    return (weight * replicas * 2 + 100) // 200


def _get(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"policy snapshot: {where}.{key} is missing or not valid")
    return value


@dataclass(frozen=True)
class Rolling:
    """Today's behaviour: the Deployment's (or the chart's) own rolling update."""

    KIND = "rolling"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND}


@dataclass(frozen=True)
class BlueGreen:
    """The new version beside the old; `activeService`'s selector switches between them."""

    preview_service: str
    active_service: str
    scale_down_delay: timedelta = DEFAULT_SCALE_DOWN_DELAY
    pre_promotion_analysis: bool = False
    post_promotion_analysis: bool = False

    KIND = "blueGreen"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> BlueGreen:
        return cls(preview_service=_get(data, "previewService", str, where),
                   active_service=_get(data, "activeService", str, where),
                   scale_down_delay=timedelta(
                       seconds=_get(data, "scaleDownDelaySeconds", int, where)),
                   pre_promotion_analysis=_get(data, "prePromotionAnalysis", bool, where),
                   post_promotion_analysis=_get(data, "postPromotionAnalysis", bool, where))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "previewService": self.preview_service,
                "activeService": self.active_service,
                "scaleDownDelaySeconds": int(self.scale_down_delay.total_seconds()),
                "prePromotionAnalysis": self.pre_promotion_analysis,
                "postPromotionAnalysis": self.post_promotion_analysis}


@dataclass(frozen=True)
class CanaryStep:
    """Set the canary's share to `weight` %, or wait for `pause` (exactly one is set)."""

    weight: int | None = None
    pause: timedelta | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> CanaryStep:
        if isinstance(data, Mapping) and set(data) == {"weight"}:
            return cls(weight=_get(data, "weight", int, where))
        if isinstance(data, Mapping) and set(data) == {"pauseSeconds"}:
            return cls(pause=timedelta(seconds=_get(data, "pauseSeconds", int, where)))
        raise ValueError(f"policy snapshot: {where} must be {{weight}} or {{pauseSeconds}}")

    def to_dict(self) -> dict[str, Any]:
        if self.pause is not None:
            return {"pauseSeconds": int(self.pause.total_seconds())}
        return {"weight": self.weight}


@dataclass(frozen=True)
class Canary:
    """A canary Deployment behind the target's Service; weights are shares of `replicas` pods."""

    replicas: int
    steps: tuple[CanaryStep, ...]

    KIND = "canary"

    @property
    def weights(self) -> tuple[int, ...]:
        """The weights of the steps, in order."""
        return tuple(step.weight for step in self.steps if step.weight is not None)

    def split(self, weight: int) -> tuple[int, int]:
        """(canary pods, stable pods) at `weight` %: 10 % of 10 replicas is (1, 9)."""
        canary = canary_pods(weight, self.replicas)
        return canary, self.replicas - canary

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Canary:
        steps = _get(data, "steps", list, where)
        return cls(replicas=_get(data, "replicas", int, where),
                   steps=tuple(CanaryStep.from_dict(step, f"{where}.steps[{index}]")
                               for index, step in enumerate(steps)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "replicas": self.replicas,
                "steps": [step.to_dict() for step in self.steps]}


Strategy = Rolling | BlueGreen | Canary
ROLLING = Rolling()


def strategy_from_dict(data: Mapping[str, Any] | None, where: str = "strategy") -> Strategy:
    """The strategy of a snapshot; a snapshot without one (written before strategies) rolls."""
    if data is None:
        return ROLLING
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind == Rolling.KIND:
        return ROLLING
    if kind == BlueGreen.KIND:
        return BlueGreen.from_dict(data, where)
    if kind == Canary.KIND:
        return Canary.from_dict(data, where)
    raise ValueError(f"policy snapshot: {where}.kind must be rolling, blueGreen or canary")
