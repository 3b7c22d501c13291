"""Charts, pinned like images: fetched from an OCI repository by version or by digest, or
loaded from a folder shipped with the app, and named by a digest that later environments
must match.

An OCI chart's digest is its manifest's (what `helm push` printed, what promotion copies);
a folder's is the sha256 over its files' paths and bytes, so an app redeployed with a
changed chart mid-release is caught. Fetching is registry protocol through the product's
own registry client (its credentials, CA and retries); loading and rendering are Helm's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import helm_python

from shared.registry.client import RegistryClient
from shared.registry.manifests import HELM_CONFIG
from shared.registry.references import is_digest
from shared.text import one_line

from .pins import ChartError, PinnedChart

CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
MAX_CHART_BYTES = 20 * 1024 * 1024


def fetch_oci(client: RegistryClient, repository: str, reference: str,
              ) -> tuple[PinnedChart, bytes]:
    """The chart at `repository:reference` (a version or a digest) and its archive's bytes."""
    source = f"oci://{client.endpoint.host}/{repository}"
    manifest = client.manifest(repository, reference)
    if manifest.config_type != HELM_CONFIG:
        raise ChartError(f"{source}:{reference} is not a Helm chart"
                         f" (config type {manifest.config_type or 'none'})")
    layers = [b for b in manifest.blobs[1:] if b.media_type == CHART_LAYER]
    if len(layers) != 1:
        raise ChartError(f"{source}:{reference} has {len(layers)} chart layers, not one")
    if layers[0].size > MAX_CHART_BYTES:
        raise ChartError(f"{source}:{reference} is {layers[0].size} bytes, more than"
                         f" {MAX_CHART_BYTES}")
    archive = b"".join(client.read_blob(repository, layers[0].digest))
    chart = load_archive(archive, source)
    if not is_digest(reference) and oci_tag(chart.version) != reference:
        raise ChartError(f"{source}:{reference} holds chart version {chart.version}")
    return PinnedChart(source, chart.name, chart.version, manifest.digest), archive


def oci_tag(version: str) -> str:
    """The OCI tag Helm pushes a chart version under (`+` is not allowed in tags: `_`)."""
    return version.replace("+", "_")


def load_archive(archive: bytes, source: str) -> helm_python.Chart:
    """Helm's chart from a `.tgz`; ChartError saying what Helm found wrong."""
    try:
        return helm_python.Chart.load_archive(archive)
    except helm_python.HelmError as bad:
        raise ChartError(f"{source}: not a chart Helm can load: {_first_line(bad)}") from None


def load_folder(root: Path, folder: str) -> tuple[PinnedChart, helm_python.Chart]:
    """The chart in `folder` (relative to the app's `root`) and its pin."""
    path = (root / folder).resolve()
    if not path.is_relative_to(root.resolve()) or not (path / "Chart.yaml").is_file():
        raise ChartError(f"chart folder {folder!r} has no Chart.yaml inside the app")
    try:
        chart = helm_python.Chart.load(path)
    except helm_python.HelmError as bad:
        raise ChartError(f"{folder}: not a chart Helm can load: {_first_line(bad)}") from None
    return PinnedChart(folder, chart.name, chart.version, folder_digest(path)), chart


def folder_digest(path: Path) -> str:
    """sha256 over every file's relative path and bytes, in path order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


def _first_line(error: BaseException) -> str:
    """Helm's message on one line (its detail is on the lines after the first)."""
    return one_line(str(error).strip() or type(error).__name__, 400)
