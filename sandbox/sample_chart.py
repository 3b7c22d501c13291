"""The sample `delivery` chart (charts/delivery) in the local stack's registry, as CI puts it.

`publish_chart` makes sure `oci://<registry>/helm/delivery:<version>` exists: when the
registry has no such tag it packages and pushes the chart with Helm's own code
(chart_push.py); a version already there is left as it is (CI never overwrites a released
chart version, and a release may have pinned its digest). `chart_version` is the version an
image tag needs (the policy's `version: image`). Does not push images: see push.py.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from sandbox.chart_push import ChartPushFailed, push_chart
from sandbox.stack_policy import CHART_ROOT, SERVICE
from shared.policy.helm import chart_version_for_tag

CHART_FOLDER = Path(__file__).resolve().parent.parent / "charts" / SERVICE
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class PublishedChart:
    """The chart at one version in the registry; `pushed` is False when it was there already."""

    reference: str  # oci://host/helm/delivery:1.0.0
    version: str
    digest: str
    pushed: bool

    def line(self) -> str:
        """What happened, in one line: `pushed chart oci://…:1.0.0 (sha256:…)`."""
        if self.pushed:
            return f"pushed chart {self.reference} ({self.digest})"
        return f"chart {self.reference} is in the registry already ({self.digest})"


def chart_version(tag: str) -> str | None:
    """The chart version an image tag names (`v1.0.1` → `1.0.1`); None when it names none."""
    return chart_version_for_tag(tag)


def own_version() -> str:
    """The version the sample chart's Chart.yaml gives (what `make run` pushes at start)."""
    return str(yaml.safe_load((CHART_FOLDER / "Chart.yaml").read_text())["version"])


def publish_chart(registry_host: str, ca: Path, version: str) -> PublishedChart:
    """The sample chart at `version` in the registry: pushed unless already there.

    ChartPushFailed (chart_push.py) when Helm cannot package or push it."""
    repository = f"{CHART_ROOT}/{SERVICE}"
    reference = f"oci://{registry_host}/{repository}:{version}"
    found = manifest_digest(registry_host, ca, repository, version.replace("+", "_"))
    if found is not None:
        return PublishedChart(reference, version, found, pushed=False)
    pushed = push_chart(CHART_FOLDER, f"oci://{registry_host}/{CHART_ROOT}", ca,
                        version=version, app_version=version)
    return PublishedChart(reference, version, pushed.digest, pushed=True)


def manifest_digest(registry_host: str, ca: Path, repository: str, tag: str) -> str | None:
    """The digest the registry holds under `repository:tag`, or None when it has none;
    ChartPushFailed when the registry does not answer as a registry."""
    request = urllib.request.Request(
        f"https://{registry_host}/v2/{repository}/manifests/{tag}", method="HEAD",
        headers={"Accept": ", ".join(MANIFEST_TYPES)})
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as answer:
            return answer.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise ChartPushFailed(f"registry {registry_host} answered {error.code} for "
                              f"{repository}:{tag}") from None
    except OSError as error:
        raise ChartPushFailed(f"registry {registry_host} does not answer: {error}") from None
