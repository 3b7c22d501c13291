"""`resolve_chart` through devhost: pinning from the registry and from the app's folder,
waiting for a version CI has not pushed, and refusing what it cannot use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.chart_push import push_chart
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.helm.charts import folder_digest
from tests.helm.test_helm_target import CHART, run

VERSION = str(yaml.safe_load((CHART / "Chart.yaml").read_text())["version"])


@pytest.fixture(scope="module")
def where(registry: LocalRegistry, tls_files: TlsFiles) -> dict[str, Any]:
    host = registry.endpoint.split("://", 1)[1]
    pushed = push_chart(CHART, f"oci://{host}/resolve", tls_files.ca, version="3.1.0")
    return {"registry": {"url": registry.endpoint, "auth": "anonymous",
                         "caBundle": str(tls_files.ca)},
            "chart": f"oci://{host}/resolve/delivery", "digest": pushed.digest}


def test_a_registry_chart_is_pinned_then_checked_by_digest(tmp_path: Path,
                                                          where: dict[str, Any]) -> None:
    ask = {"chart": where["chart"], "registry": where["registry"]}
    pinned, again, absent = run(
        tmp_path,
        ("resolve_chart", {**ask, "version": "3.1.0", "digest": None}),
        ("resolve_chart", {**ask, "version": "3.1.0", "digest": where["digest"]}),
        ("resolve_chart", {**ask, "version": "3.2.0", "digest": None}))
    assert pinned == again == {"chart": {"source": where["chart"], "name": "delivery",
                                         "version": "3.1.0", "digest": where["digest"]}}
    assert absent == {"absent": f"{where['chart']}:3.2.0 is not in the registry"}

    (gone,) = run(tmp_path, ("resolve_chart", {**ask, "version": "3.1.0",
                                              "digest": "sha256:" + "0" * 64}))
    assert isinstance(gone, Exception) and "[permanent]" in str(gone)
    assert "the one this release pinned, is not in the registry" in str(gone)


def test_a_folder_chart_is_pinned_by_its_files(tmp_path: Path) -> None:
    shipped, fixed, wrong, changed = run(
        tmp_path,
        ("resolve_chart", {"chart": "charts/delivery", "version": None, "digest": None}),
        ("resolve_chart", {"chart": "charts/delivery", "version": VERSION, "digest": None}),
        ("resolve_chart", {"chart": "charts/delivery", "version": "9.9.9", "digest": None}),
        ("resolve_chart", {"chart": "charts/delivery", "version": None,
                           "digest": "sha256:" + "1" * 64}))
    assert shipped == fixed == {"chart": {"source": "charts/delivery", "name": "delivery",
                                          "version": VERSION,
                                          "digest": folder_digest(CHART)}}
    assert isinstance(wrong, Exception)
    assert f"holds chart version {VERSION}, not 9.9.9" in str(wrong)
    assert isinstance(changed, Exception) and "changed since the release pinned it" in str(
        changed)


@pytest.mark.parametrize(("request_", "words"), [
    ({}, "resolve_chart needs chart"),
    ({"chart": "oci://127.0.0.1:9/x/y", "version": "1.0.0"}, "its registry is not in the"),
    ({"chart": "charts/delivery", "digest": 5}, "digest must be a string or null"),
    ({"chart": "../../etc", "version": None}, "has no Chart.yaml inside the app"),
    ({"chart": "oci://h/x", "registry": {"url": "https://h"}, "version": ""},
     "resolve_chart needs version"),
])
def test_requests_it_cannot_use_are_refused_as_permanent(
        tmp_path: Path, request_: dict[str, Any], words: str) -> None:
    (failure,) = run(tmp_path, ("resolve_chart", request_))
    assert isinstance(failure, Exception), failure
    assert "[permanent]" in str(failure) and words in str(failure), str(failure)
    assert "\n" not in json.dumps(str(failure).splitlines()[0])
