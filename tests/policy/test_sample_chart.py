"""The sample chart `charts/delivery`: Helm's own lint passes, and it renders the image by digest.

Rendering is Helm's offline template engine (helm-python-sdk), no cluster involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from helm_python import Chart, HelmRenderError
from helm_samples import HELM

from shared.policy import parse_policy
from shared.policy.helm import chart_version_for_tag

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "delivery"
DIGEST = "sha256:" + "4f" * 32
IMAGE = {"image": {"repository": "127.0.0.1:5000/delivery", "digest": DIGEST}}
WARNING = 2  # Helm's lint severities: 1 info, 2 warning, 4 error


def render(values: dict[str, Any], release: str = "delivery") -> dict[str, dict[str, Any]]:
    """The chart's objects by kind (one of each), rendered as `release` in namespace qa."""
    with Chart.load(CHART) as chart:
        manifests = chart.render(values=values, name=release, namespace="qa")
    objects = [yaml.safe_load(text) for text in manifests.values() if text.strip()]
    return {item["kind"]: item for item in objects}


@pytest.mark.parametrize("values", [None, IMAGE])
def test_helm_lint_passes_strictly(values: dict[str, Any] | None) -> None:
    report = helm_python.lint(CHART, values, strict=True)
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= WARNING] == []


def test_the_deployment_runs_the_image_by_digest_with_readiness_on_the_served_port() -> None:
    deployment = render(IMAGE)["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "app"
    assert container["image"] == f"127.0.0.1:5000/delivery@{DIGEST}"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert deployment["spec"]["selector"]["matchLabels"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_service_and_the_test_hook_reach_the_health_url() -> None:
    objects = render(IMAGE, release="delivery-qa")
    service = objects["Service"]
    assert service["metadata"]["name"] == "delivery-qa"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"].items() <= \
        objects["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    test = objects["Pod"]
    assert test["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test["spec"]["restartPolicy"] == "Never"
    (container,) = test["spec"]["containers"]
    port = service["spec"]["ports"][0]["port"]
    assert container["command"][-1] == f"http://delivery-qa:{port}/healthz"


def test_values_set_by_a_policy_reach_the_manifests() -> None:
    deployment = render({**IMAGE, "replicaCount": 3})["Deployment"]
    assert deployment["spec"]["replicas"] == 3


def test_without_the_digest_the_chart_does_not_render() -> None:
    with pytest.raises(HelmRenderError, match="image.digest is set by the release workflow"):
        render({"image": {"repository": "127.0.0.1:5000/delivery"}})


def test_packaged_with_the_image_version_the_chart_carries_it(tmp_path: Path) -> None:
    version = chart_version_for_tag("v1.4.2_build.7")
    assert version == "1.4.2+build.7"
    archive = helm_python.package(CHART, destination=tmp_path, version=version,
                                  app_version=version)
    with Chart.load(archive) as chart:
        assert (chart.version, chart.metadata["appVersion"]) == (version, version)


def test_the_policy_can_name_the_sample_chart_folder() -> None:
    text = HELM.replace("valuesFiles: [deploy/values.yaml, deploy/values-qa.yaml]",
                        "valuesFiles: [charts/delivery/values.yaml]")
    text = text.replace("oci://myacr.azurecr.io/prod/helm/delivery", "charts/delivery")
    text = text.replace("oci://myacr.azurecr.io/helm/delivery", "charts/delivery")
    helm = parse_policy(text, "release-policy.yaml", ROOT).service("delivery").environments[0].helm
    assert helm is not None and helm.chart == "charts/delivery"
    assert helm.values_files[0].values == yaml.safe_load((CHART / "values.yaml").read_text())
