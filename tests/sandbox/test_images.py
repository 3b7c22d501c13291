"""build_image writes valid, deterministic OCI layouts in bounded memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
from pathlib import Path
from typing import Any

from sandbox.images import OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME, build_image


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def _json_blob(layout: Path, digest: str) -> Any:
    return json.loads(_blob(layout, digest))


def test_single_platform_layout(tmp_path: Path) -> None:
    layout = build_image(tmp_path, layer_sizes=[10_000, 0, 3], tag="v1")

    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads((tmp_path / "index.json").read_text())["manifests"]
    assert entry["annotations"] == {REF_NAME: "v1"}
    assert (entry["digest"], entry["mediaType"]) == (layout.digest, OCI_MANIFEST)
    assert layout.media_type == OCI_MANIFEST and layout.reference == f"oci:{tmp_path}:v1"

    for blob in (tmp_path / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    manifest = _json_blob(tmp_path, layout.digest)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == OCI_MANIFEST
    assert [layer["digest"] for layer in manifest["layers"]] == layout.layer_digests
    assert {layer["mediaType"] for layer in manifest["layers"]} == {OCI_LAYER_GZIP}
    config = _json_blob(tmp_path, manifest["config"]["digest"])
    assert (config["os"], config["architecture"]) == ("linux", "amd64")

    for descriptor, diff_id, size in zip(
        manifest["layers"], config["rootfs"]["diff_ids"], [10_000, 0, 3], strict=True
    ):
        compressed = _blob(tmp_path, descriptor["digest"])
        assert len(compressed) == descriptor["size"]
        tar = gzip.decompress(compressed)
        assert f"sha256:{hashlib.sha256(tar).hexdigest()}" == diff_id
        (member,) = tarfile.open(fileobj=io.BytesIO(tar)).getmembers()
        assert member.size == size
    blob_bytes = sum(path.stat().st_size for path in (tmp_path / "blobs" / "sha256").iterdir())
    assert layout.total_bytes == blob_bytes


def test_multi_platform_index(tmp_path: Path) -> None:
    platforms = ["linux/amd64", "linux/arm64/v8"]
    layout = build_image(tmp_path, layer_sizes=[1000, 2000], platforms=platforms)

    assert layout.media_type == OCI_INDEX
    index = _json_blob(tmp_path, layout.digest)
    assert index["mediaType"] == OCI_INDEX
    assert [entry["platform"] for entry in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    assert [entry["digest"] for entry in index["manifests"]] == list(layout.manifests.values())
    assert len(set(layout.layer_digests)) == 4
    arm = _json_blob(tmp_path, layout.manifests["linux/arm64/v8"])
    arm_config = _json_blob(tmp_path, arm["config"]["digest"])
    assert (arm_config["architecture"], arm_config["variant"]) == ("arm64", "v8")


def test_same_seed_same_digests_other_seed_other_digests(tmp_path: Path) -> None:
    first = build_image(tmp_path / "a", layer_sizes=[5000], seed="s")
    again = build_image(tmp_path / "b", layer_sizes=[5000], seed="s")
    other = build_image(tmp_path / "c", layer_sizes=[5000], seed="t")
    assert first.digest == again.digest and first.layer_digests == again.layer_digests
    assert other.layer_digests != first.layer_digests


def test_tags_accumulate_in_one_layout(tmp_path: Path) -> None:
    build_image(tmp_path, layer_sizes=[10], tag="one")
    build_image(tmp_path, layer_sizes=[20], tag="two")
    build_image(tmp_path, layer_sizes=[30], tag="one")
    entries = json.loads((tmp_path / "index.json").read_text())["manifests"]
    assert sorted(entry["annotations"][REF_NAME] for entry in entries) == ["one", "two"]
    assert not list((tmp_path / "blobs" / "sha256").glob(".partial-*"))


def test_a_64_mib_layer_is_built_in_bounded_memory(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        layout = build_image(tmp_path, layer_sizes=[64 << 20])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert layout.total_bytes > 64 << 20
    assert peak < 16 << 20, f"peak {peak / (1 << 20):.1f} MiB"
