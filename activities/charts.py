"""`resolve_chart`: the chart a release pins, from the registry or the app's folder.

Answers `{"chart": pin}`, or `{"absent": why}` while a chart version is not in the
registry yet (CI may push the image first; the orchestrator waits with a durable timer).
A chart that cannot be used, or a pinned digest that is gone, is a permanent failure.
"""

from __future__ import annotations

from typing import Any

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.helm.pins import ChartError
from shared.policy.helm import is_oci, split_oci
from shared.registry.client import RegistryEndpoint
from shared.registry.errors import ImageNotFound
from shared.registry.registries import for_endpoint

bp = blueprint()


@bp.activity_trigger(input_name="request")
@marks_failures
def resolve_chart(request: dict[str, Any]) -> dict[str, Any]:
    """Pin `chart` at `version` (a folder: the version it ships, unless one is asked for),
    or check that it still has `digest` when one is given."""
    from shared.helm.charts import fetch_oci, load_folder, oci_tag  # loads Helm's SDK
    from shared.helm.target import APP_ROOT

    chart, digest = _text(request, "chart"), request.get("digest")
    if digest is not None and not isinstance(digest, str):
        raise ChartError("digest must be a string or null")
    if not is_oci(chart):
        pin = load_folder(APP_ROOT, chart)[0]
        if digest and pin.digest != digest:
            raise ChartError(f"chart folder {chart} changed since the release pinned it"
                             f" ({digest}, now {pin.digest})")
        wanted = request.get("version")
        if wanted is not None and pin.version != wanted:
            raise ChartError(f"chart folder {chart} holds chart version {pin.version}, not"
                             f" {wanted}")
        return {"chart": pin.to_dict()}
    version = _text(request, "version")
    registry = request.get("registry")
    if not isinstance(registry, dict):
        raise ChartError(f"chart {chart}: its registry is not in the policy snapshot")
    repository = split_oci(chart)[1]
    try:
        pin = fetch_oci(for_endpoint(RegistryEndpoint.from_dict(registry)), repository,
                        digest or oci_tag(version))[0]
    except ImageNotFound:
        if digest:
            raise ChartError(f"chart {chart}@{digest}, the one this release pinned, is not in"
                             " the registry") from None
        return {"absent": f"{chart}:{oci_tag(version)} is not in the registry"}
    return {"chart": pin.to_dict()}


def _text(request: Any, field: str) -> str:
    value = request.get(field) if isinstance(request, dict) else None
    if not isinstance(value, str) or not value:
        raise ChartError(f"resolve_chart needs {field}")
    return value
