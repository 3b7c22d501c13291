"""Parsing manifests of every kind; digests are those of the exact bytes."""

import hashlib
import json

import pytest

from shared.registry.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    HELM_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    UnsupportedManifest,
    not_runnable,
    parse_manifest,
    platform_name,
)


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def image(media_type: str | None = OCI_MANIFEST) -> dict:
    document = {"schemaVersion": 2,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": digest("config"), "size": 10},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": digest(f"layer{n}"), "size": 100 + n} for n in range(2)]}
    if media_type:
        document["mediaType"] = media_type
    return document


def test_image_manifest_lists_config_and_layers_and_hashes_the_exact_bytes() -> None:
    raw = json.dumps(image(), indent=3).encode()
    manifest = parse_manifest(raw)
    assert manifest.media_type == OCI_MANIFEST and not manifest.is_index
    assert [b.digest for b in manifest.blobs] == [digest("config"), digest("layer0"),
                                                   digest("layer1")]
    assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert manifest.raw is raw


def test_docker_schema_2_manifest() -> None:
    manifest = parse_manifest(json.dumps(image(DOCKER_MANIFEST)).encode())
    assert manifest.media_type == DOCKER_MANIFEST and len(manifest.blobs) == 3


def test_media_type_from_the_header_or_the_shape_when_the_document_omits_it() -> None:
    raw = json.dumps(image(None)).encode()
    assert parse_manifest(raw, f"{DOCKER_MANIFEST}; charset=utf-8").media_type == DOCKER_MANIFEST
    assert parse_manifest(raw).media_type == OCI_MANIFEST


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_indexes_list_children_with_platforms(media_type: str) -> None:
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest("amd"), "size": 500,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": digest("arm"), "size": 501,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": OCI_MANIFEST, "digest": digest("att"), "size": 502}]}
    manifest = parse_manifest(json.dumps(document).encode())
    assert manifest.is_index and manifest.blobs == ()
    assert [c.digest for c in manifest.children] == [digest("amd"), digest("arm"), digest("att")]
    assert manifest.platforms == ["linux/amd64", "linux/arm64/v8"]


@pytest.mark.parametrize("raw, reason", [
    (b"not json", "not JSON"),
    (b"[" * 5000 + b"]" * 5000, "nested deeper than 32 levels"),
    (b'{"schemaVersion": NaN}', "NaN is not a JSON number"),
    (b" " * (4 * 1024 * 1024 + 1), "larger than 4194304 bytes"),
    (b"[]", "not a JSON object"),
    (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), "schema 1"),
    (json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode(), "unsupported"),
    (json.dumps({**image(), "layers": "x"}).encode(), "'layers' is missing or not a list"),
    (json.dumps({**image(), "config": {"digest": "sha256:zz", "size": 1}}).encode(),
     "invalid digest"),
    (json.dumps({**image(), "config": {"digest": digest("c"), "size": -1}}).encode(),
     "invalid size"),
])
def test_malformed_manifests_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedManifest, match=reason):
        parse_manifest(raw)


def test_platform_names() -> None:
    assert platform_name({"os": "windows", "architecture": "amd64"}) == "windows/amd64"
    assert platform_name({"architecture": "amd64"}) is None
    assert platform_name(None) is None


def test_what_a_cluster_can_run_and_what_it_cannot() -> None:
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    chart = {**image(), "config": {"mediaType": HELM_CONFIG, "digest": digest("c"), "size": 1}}
    other = {**image(), "config": {"mediaType": "application/vnd.x.config+json",
                                   "digest": digest("c"), "size": 1}}
    sbom = {**image(), "artifactType": "application/spdx+json"}
    cases = [(image(), None), (image(DOCKER_MANIFEST), None), (index, None),
             (chart, f"a Helm chart (config type {HELM_CONFIG})"),
             (other, "an artifact with config type application/vnd.x.config+json"),
             (sbom, "an OCI artifact of type application/spdx+json"),
             ({**index, "artifactType": "application/spdx+json"},
              "an OCI artifact of type application/spdx+json")]
    for document, why in cases:
        manifest = parse_manifest(json.dumps(document).encode())
        assert not_runnable(manifest) == why, document
    assert parse_manifest(json.dumps(image()).encode()).config_type == \
        "application/vnd.oci.image.config.v1+json"
    assert parse_manifest(json.dumps(index).encode()).config_type is None
