"""How a release pins its Helm chart: the chart verified in the first Helm environment is
the chart every later one gets, by digest. Requests of the `resolve_chart` activity and of
the chart's promotion beside the image. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from shared.helm.pins import PinnedChart
from shared.policy.helm import IMAGE_VERSION, HelmTarget, is_oci, split_oci

from .plan import ReleasePlan, Stage


def helm_of(stage: Stage) -> HelmTarget:
    """The stage's Helm target (ValueError when it deploys something else)."""
    helm = stage.helm
    if helm is None:
        raise ValueError(f"environment {stage.name!r} has no Helm target")
    return helm


def chart_request(plan: ReleasePlan, stage: Stage, pinned: PinnedChart | None) -> dict[str, Any]:
    """`resolve_chart`'s input: the stage's chart at the release's version, or at the digest
    an earlier environment pinned. A chart folder is taken as the app ships it: its version
    is asked for only when the policy fixes one."""
    helm = helm_of(stage)
    folder_as_shipped = not helm.oci and helm.version == IMAGE_VERSION
    return {"chart": helm.chart,
            "version": None if folder_as_shipped else helm.chart_version(plan.version),
            "digest": pinned.digest if pinned else None, "registry": helm.chart_registry}


def moves_with_promotion(stage: Stage, pinned: PinnedChart) -> bool:
    """Whether the stage's promotion copies the pinned chart into the stage's chart
    repository (both OCI, and somewhere else than the pin)."""
    helm = helm_of(stage)
    return stage.promotion is not None and helm.oci and is_oci(pinned.source) \
        and helm.chart != pinned.source


def chart_promotion_request(plan: ReleasePlan, stage: Stage,
                            pinned: PinnedChart) -> dict[str, Any]:
    """`promote_image`'s input that copies the pinned chart, by digest, to the stage's chart
    repository at its version (`+` written `_`, as Helm tags charts)."""
    helm, promotion = helm_of(stage), stage.promotion
    assert promotion is not None
    source_registry = chart_registry_of(plan, pinned.source)
    target_registry = helm.chart_registry
    if source_registry is None or target_registry is None:
        raise ValueError(f"environment {stage.name!r}: the chart registries are not known")
    same = target_registry == source_registry
    into_promotion = target_registry == promotion.target_registry
    return {"registry": source_registry,
            "source": f"{split_oci(pinned.source)[1]}@{pinned.digest}",
            "target": f"{split_oci(helm.chart)[1]}:{pinned.version.replace('+', '_')}",
            "targetRegistry": None if same else target_registry,
            "acrImport": promotion.acr_import if into_promotion and not same else None}


def chart_registry_of(plan: ReleasePlan, source: str) -> dict[str, Any] | None:
    """The registry of the stage whose chart is `source`."""
    for stage in plan.stages:
        if stage.helm is not None and stage.helm.chart == source:
            return stage.helm.chart_registry
    return None


def helm_fields(stage: Stage, job: dict[str, Any]) -> dict[str, Any]:
    """What a Helm stage's cluster requests carry besides the target (nothing for others):
    the pinned chart, Helm's timeout, and where the ledger knows the environment's last good
    release."""
    helm = stage.helm
    if helm is None:
        return {}
    return {"chart": job.get("chart"),
            "timeoutSeconds": int(stage.rollout_timeout.total_seconds()),
            "service": job.get("service"), "environment": stage.name}
