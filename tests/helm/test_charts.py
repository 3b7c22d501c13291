"""Charts pinned like images: fetched from the real registry (pushed by Helm's own code, as
CI does) by version or digest, and folders named by their content."""

from __future__ import annotations

from pathlib import Path

import helm_python
import pytest

from sandbox.chart_push import push_chart
from sandbox.registry import LocalRegistry
from sandbox.registry_push import RegistryPusher
from sandbox.tls import TlsFiles
from shared.helm.charts import fetch_oci, folder_digest, load_folder
from shared.helm.pins import ChartError, PinnedChart
from shared.registry.client import RegistryClient, RegistryEndpoint
from shared.registry.errors import ImageNotFound


@pytest.fixture(scope="module")
def chart_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("charts")
    helm_python.Chart.create("shop", root)
    return root / "shop"


@pytest.fixture
def client(registry: LocalRegistry, tls_files: TlsFiles) -> RegistryClient:
    return RegistryClient(RegistryEndpoint.from_dict(
        {"url": registry.endpoint, "auth": "anonymous", "caBundle": str(tls_files.ca)}))


def remote(registry: LocalRegistry) -> str:
    return "oci://" + registry.endpoint.split("://", 1)[1] + "/helm"


def test_a_pushed_chart_is_fetched_by_version_and_by_its_digest(
        registry: LocalRegistry, tls_files: TlsFiles, chart_folder: Path,
        client: RegistryClient) -> None:
    pushed = push_chart(chart_folder, remote(registry), tls_files.ca, version="2.4.0")

    pinned, archive = fetch_oci(client, "helm/shop", "2.4.0")
    assert pinned == PinnedChart(f"{remote(registry)}/shop", "shop", "2.4.0", pushed.digest)
    assert helm_python.Chart.load_archive(archive).version == "2.4.0"
    again, _ = fetch_oci(client, "helm/shop", pushed.digest)
    assert again == pinned
    assert PinnedChart.from_dict(pinned.to_dict()) == pinned
    assert pinned.reference == f"{remote(registry)}/shop@{pushed.digest}"


def test_a_tag_that_names_another_chart_version_is_refused(
        registry: LocalRegistry, tls_files: TlsFiles, chart_folder: Path,
        client: RegistryClient) -> None:
    pushed = push_chart(chart_folder, remote(registry), tls_files.ca, version="2.5.0")
    client.put_manifest("helm/shop", "2.6.0", client.manifest("helm/shop", pushed.digest))

    with pytest.raises(ChartError, match=r"helm/shop:2.6.0 holds chart version 2.5.0"):
        fetch_oci(client, "helm/shop", "2.6.0")


def test_an_image_or_a_missing_version_is_not_a_chart(
        registry: LocalRegistry, client: RegistryClient) -> None:
    RegistryPusher.of(registry).push_image("helm/not-a-chart", "1.0.0")

    with pytest.raises(ChartError, match=r"is not a Helm chart \(config type application/vnd"
                                         r"\.oci\.image\.config\.v1\+json\)"):
        fetch_oci(client, "helm/not-a-chart", "1.0.0")
    with pytest.raises(ImageNotFound, match="helm/shop:9.9.9: not found"):
        fetch_oci(client, "helm/shop", "9.9.9")


def test_a_folder_chart_is_named_by_its_content(tmp_path: Path) -> None:
    helm_python.Chart.create("local", tmp_path)
    pinned, chart = load_folder(tmp_path, "local")
    assert (pinned.source, pinned.name, pinned.version) == ("local", "local", chart.version)
    assert pinned.digest == folder_digest(tmp_path / "local")

    assert load_folder(tmp_path, "local")[0] == pinned
    (tmp_path / "local" / "values.yaml").write_text("replicaCount: 3\n")
    changed = load_folder(tmp_path, "local")[0].digest
    assert changed != pinned.digest
    (tmp_path / "local" / "values.yaml").rename(tmp_path / "local" / "settings.yaml")
    assert folder_digest(tmp_path / "local") not in (pinned.digest, changed)


def test_a_folder_outside_the_app_or_without_chart_yaml_is_refused(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    helm_python.Chart.create("outside", tmp_path)
    with pytest.raises(ChartError, match="no Chart.yaml inside the app"):
        load_folder(app, "../outside")
    with pytest.raises(ChartError, match="no Chart.yaml inside the app"):
        load_folder(app, ".")
