"""push/skopeo_copy: skopeo puts generated images into the local registry as OCI or Docker v2s2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sandbox.images import OCI_INDEX, OCI_MANIFEST, SkopeoError, build_image, push, skopeo_copy
from sandbox.registry import LocalRegistry
from sandbox.tools import ToolMissingError
from tests.sandbox.helpers import get_manifest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
PLATFORMS = ["linux/amd64", "linux/arm64"]


def _check_stored(registry: LocalRegistry, repository: str, tag: str, digest: str,
                  media_type: str) -> dict:
    reply = get_manifest(registry.endpoint, repository, tag, registry.tls)
    assert reply.headers["Content-Type"] == media_type
    assert reply.headers["Docker-Content-Digest"] == digest
    assert f"sha256:{hashlib.sha256(reply.body).hexdigest()}" == digest
    return json.loads(reply.body)


def test_single_platform_oci_keeps_every_digest(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = build_image(tmp_path, layer_sizes=[200_000, 1000], seed="push-oci")
    digest = push(layout, registry, "push/oci", "v1")
    assert digest == layout.digest
    manifest = _check_stored(registry, "push/oci", "v1", digest, OCI_MANIFEST)
    assert [layer["digest"] for layer in manifest["layers"]] == layout.layer_digests


def test_docker_v2s2_converts_the_manifest_but_not_the_layers(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    layout = build_image(tmp_path, layer_sizes=[50_000], seed="push-v2s2")
    digest = push(layout, registry, "push/v2s2", docker_v2s2=True)
    assert digest != layout.digest
    manifest = _check_stored(registry, "push/v2s2", layout.tag, digest, DOCKER_MANIFEST)
    assert [layer["digest"] for layer in manifest["layers"]] == layout.layer_digests
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"


def test_multi_platform_index(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = build_image(tmp_path, layer_sizes=[10_000], platforms=PLATFORMS, seed="push-multi")
    digest = push(layout, registry, "push/multi", "v2")
    assert digest == layout.digest
    index = _check_stored(registry, "push/multi", "v2", digest, OCI_INDEX)
    assert [entry["platform"]["architecture"] for entry in index["manifests"]] == [
        "amd64", "arm64"]
    for entry in index["manifests"]:
        _check_stored(registry, "push/multi", entry["digest"], entry["digest"], OCI_MANIFEST)


def test_multi_platform_as_docker_manifest_list(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = build_image(tmp_path, layer_sizes=[10_000], platforms=PLATFORMS, seed="push-list")
    digest = push(layout, registry, "push/list", "v3", docker_v2s2=True)
    manifest_list = _check_stored(registry, "push/list", "v3", digest, DOCKER_LIST)
    for entry in manifest_list["manifests"]:
        assert entry["mediaType"] == DOCKER_MANIFEST
        _check_stored(registry, "push/list", entry["digest"], entry["digest"], DOCKER_MANIFEST)


def test_skopeo_copy_within_the_registry_times_the_copy(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    layout = build_image(tmp_path, layer_sizes=[100_000], seed="copy")
    digest = push(layout, registry, "copy/src", "v1")
    seconds = skopeo_copy(f"docker://{registry.host}/copy/src@{digest}",
                          f"docker://{registry.host}/prod/copy/dst:v1", tls=registry.tls)
    assert 0 < seconds < 30
    _check_stored(registry, "prod/copy/dst", "v1", digest, OCI_MANIFEST)


def test_failure_carries_skopeos_stderr(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = build_image(tmp_path, layer_sizes=[10], seed="fail")
    with pytest.raises(SkopeoError, match=r"(?s)push/Bad.*failed \(exit 1\):\n.*invalid"):
        push(layout, registry, "push/Bad")


def test_untrusted_registry_is_refused(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = build_image(tmp_path, layer_sizes=[10], seed="untrusted")
    with pytest.raises(SkopeoError, match="x509|certificate"):
        push(layout, registry.host, "push/untrusted")


def test_missing_skopeo_says_what_to_install(
    registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = build_image(tmp_path, layer_sizes=[10])
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ToolMissingError, match=r"^skopeo not found: install it with "
                       r"`apt-get install -y skopeo` \(or run `make test` as root\)$"):
        push(layout, registry, "push/never")
