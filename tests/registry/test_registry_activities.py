"""`resolve_image` and `promote_image` run by devhost as the Functions worker would."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.images import build_image, push
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from tests.apphost import run_activities

REPO = Path(__file__).resolve().parents[2]


def test_resolve_then_promote(tmp_path: Path, registry: LocalRegistry,
                              tls_files: TlsFiles) -> None:
    layout = build_image(tmp_path / "img", layer_sizes=[100, 200], seed="activities", tag="1.0")
    digest = push(layout, registry, "act-delivery", "1.0")
    where = {"url": registry.endpoint, "auth": "anonymous", "caBundle": str(tls_files.ca)}

    resolved, promoted, again = run_activities(
        tmp_path / "data",
        ("resolve_image", {"registry": where, "image": "act-delivery:1.0"}),
        ("promote_image", {"registry": where, "source": f"act-delivery@{digest}",
                           "target": "prod/act-delivery:1.0"}),
        ("promote_image", {"registry": where, "source": f"act-delivery@{digest}",
                           "target": "prod/act-delivery:1.0"}))

    assert resolved == {"registry": registry.host, "repository": "act-delivery",
                        "reference": "1.0", "digest": digest,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "platforms": []}
    assert promoted["digest"] == digest and promoted["blobsMounted"] == 3
    assert promoted["bytesCopied"] == 0 and promoted["unchanged"] is False
    assert again["unchanged"] is True


@pytest.mark.parametrize("request_, reason", [
    ({"image": "x:1"}, "registry must be a JSON object"),
    ({"registry": {"url": "r.io", "auth": "anonymous"}, "image": "x"}, "needs a tag or digest"),
])
def test_bad_requests_fail_before_any_registry_call(tmp_path: Path, request_: dict,
                                                    reason: str) -> None:
    (failure,) = run_activities(tmp_path / "data", ("resolve_image", request_))
    assert isinstance(failure, ValueError) and reason in str(failure)
