"""Promotion and resolution against a real OCI registry (docker-registry over TLS).

Every client goes through the fault proxy, which counts the traffic (so "zero blob
bytes moved" is measured, not assumed) and injects 429/503 and declined mounts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.faults import FaultProxy
from sandbox.images import OciLayout, build_image, push
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles, make_throwaway_cert
from sandbox.tools import free_port
from shared.registry.client import RegistryClient, RegistryEndpoint, RetrySettings
from shared.registry.errors import (
    DigestMismatch,
    ImageNotFound,
    RegistryUnavailable,
    TagConflict,
)
from shared.registry.manifests import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from shared.registry.promotion import promote

FAST_RETRY = RetrySettings(total=4, backoff_factor=0.05, backoff_max=0.5)
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def client(fault_proxy: FaultProxy, tls_files: TlsFiles) -> RegistryClient:
    endpoint = RegistryEndpoint(fault_proxy.endpoint, "anonymous", str(tls_files.ca))
    return RegistryClient(endpoint, retry=FAST_RETRY)


def pushed(tmp_path: Path, registry: LocalRegistry, repository: str, tag: str = "v1", *,
           layer_sizes: tuple[int, ...] = (1000, 20_000, 300_000), seed: str | None = None,
           platforms: list[str] | None = None, docker: bool = False) -> tuple[OciLayout, str]:
    layout = build_image(tmp_path / f"{repository.replace('/', '_')}-{tag}",
                         layer_sizes=list(layer_sizes), platforms=platforms,
                         seed=seed or f"{repository}:{tag}", tag=tag)
    return layout, push(layout, registry, repository, tag, docker_v2s2=docker)


def writes(stats) -> int:
    return sum(stats.by_method.get(method, 0) for method in WRITES)


def test_single_platform_oci_image_is_promoted_without_moving_blob_bytes(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy,
        client: RegistryClient) -> None:
    layout, digest = pushed(tmp_path, registry, "svc-oci")
    assert client.manifest("svc-oci", "v1").digest == digest
    fault_proxy.reset_stats()

    result = promote(client, "svc-oci", digest, "prod/svc-oci", "v1")

    stats = fault_proxy.stats()
    assert (result.blobs_mounted, result.blobs_copied, result.bytes_copied) == (4, 0, 0)
    assert stats.mounts == 4
    assert stats.blob_request_bytes == 0 and stats.blob_response_bytes == 0
    assert result.media_type == OCI_MANIFEST and result.manifests_written == 1
    assert client.manifest_digest("prod/svc-oci", "v1") == digest
    promoted = client.manifest("prod/svc-oci", digest)
    assert [b.digest for b in promoted.blobs][1:] == layout.layer_digests
    assert all(client.blob_exists("prod/svc-oci", b.digest) for b in promoted.blobs)
    assert result.to_dict()["target"].endswith("/prod/svc-oci:v1")


def test_docker_schema_2_image_keeps_its_media_type_and_digest(
        tmp_path: Path, registry: LocalRegistry, client: RegistryClient) -> None:
    _, digest = pushed(tmp_path, registry, "svc-docker", docker=True)
    assert client.manifest("svc-docker", "v1").media_type == DOCKER_MANIFEST

    result = promote(client, "svc-docker", digest, "prod/svc-docker", "v1")

    assert result.media_type == DOCKER_MANIFEST and result.blobs_mounted == 4
    assert client.manifest("prod/svc-docker", "v1").digest == digest


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_multi_platform_image_promotes_every_platform(
        tmp_path: Path, registry: LocalRegistry, client: RegistryClient, docker: bool) -> None:
    repository = f"svc-multi-{'docker' if docker else 'oci'}"
    _, digest = pushed(tmp_path, registry, repository, platforms=["linux/amd64", "linux/arm64"],
                       docker=docker)

    result = promote(client, repository, digest, f"prod/{repository}", "v1")

    assert result.media_type == (DOCKER_LIST if docker else OCI_INDEX)
    assert result.platforms == ["linux/amd64", "linux/arm64"]
    assert result.manifests_written == 3 and result.blobs_mounted == 8
    top = client.manifest(f"prod/{repository}", "v1")
    assert top.digest == digest
    for child in top.children:
        assert client.manifest(f"prod/{repository}", child.digest).digest == child.digest


def test_repeated_promotion_writes_nothing(tmp_path: Path, registry: LocalRegistry,
                                           fault_proxy: FaultProxy,
                                           client: RegistryClient) -> None:
    _, digest = pushed(tmp_path, registry, "svc-repeat")
    first = promote(client, "svc-repeat", digest, "prod/svc-repeat", "v1")
    assert not first.unchanged
    fault_proxy.reset_stats()

    again = promote(client, "svc-repeat", digest, "prod/svc-repeat", "v1")

    assert again.unchanged and again.blobs_mounted == 0 and again.manifests_written == 0
    assert writes(fault_proxy.stats()) == 0


def test_a_tag_at_another_digest_is_refused_unless_overwrite_is_allowed(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy,
        client: RegistryClient) -> None:
    _, old = pushed(tmp_path, registry, "prod/svc-conflict", seed="old")
    _, new = pushed(tmp_path, registry, "svc-conflict", seed="new")
    fault_proxy.reset_stats()

    with pytest.raises(TagConflict) as refused:
        promote(client, "svc-conflict", new, "prod/svc-conflict", "v1")

    message = str(refused.value)
    assert f"prod/svc-conflict:v1: already points to {old} (expected {new})" in message
    assert message.startswith(f"registry {fault_proxy.host}: ")
    assert writes(fault_proxy.stats()) == 0
    assert client.manifest_digest("prod/svc-conflict", "v1") == old

    result = promote(client, "svc-conflict", new, "prod/svc-conflict", "v1",
                     allow_overwrite=True)
    assert not result.unchanged
    assert client.manifest_digest("prod/svc-conflict", "v1") == new


def test_unknown_source_tag_or_digest_is_a_clear_error(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy,
        client: RegistryClient) -> None:
    pushed(tmp_path, registry, "svc-known")
    with pytest.raises(ImageNotFound, match=r"svc-known:v9: not found \(HTTP 404: "
                                            "MANIFEST_UNKNOWN"):
        client.manifest("svc-known", "v9")
    missing = "sha256:" + "0" * 64
    with pytest.raises(ImageNotFound, match=f"svc-known@{missing}: not found"):
        promote(client, "svc-known", missing, "prod/svc-known", "v1")
    with pytest.raises(ImageNotFound, match="no-such-repo:v1: not found"):
        client.manifest("no-such-repo", "v1")
    assert client.manifest_digest("prod/svc-known", "v1") is None


def test_a_stopped_registry_is_a_clear_error(tmp_path: Path) -> None:
    tls = make_throwaway_cert(tmp_path / "tls")
    stopped = LocalRegistry(tmp_path / "registry", tls, port=free_port())
    stopped.start()
    stopped.stop()
    client = RegistryClient(RegistryEndpoint(stopped.endpoint, "anonymous", str(tls.ca)),
                            retry=FAST_RETRY)
    with pytest.raises(RegistryUnavailable) as unavailable:
        client.manifest("svc", "v1")
    assert str(unavailable.value).startswith(f"registry {stopped.host}: svc:v1: cannot connect")


def test_throttling_unavailability_and_resets_are_retried(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy,
        client: RegistryClient) -> None:
    _, digest = pushed(tmp_path, registry, "svc-flaky")
    fault_proxy.inject(429, times=2, method="GET", path_contains="/manifests/",
                       retry_after="0")
    fault_proxy.inject(503, times=2, method="POST", path_contains="/blobs/uploads/")
    fault_proxy.inject(503, times=1, method="PUT", path_contains="/manifests/")
    fault_proxy.drop_connections(times=2, method="HEAD", path_contains="/manifests/")

    result = promote(client, "svc-flaky", digest, "prod/svc-flaky", "v1")

    assert fault_proxy.stats().injected == 5 and fault_proxy.stats().dropped == 2
    assert result.blobs_mounted == 4
    assert client.manifest_digest("prod/svc-flaky", "v1") == digest


def test_persistent_throttling_ends_in_a_clear_error(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy,
        client: RegistryClient) -> None:
    fault_proxy.inject(503, times=50, method="GET", path_contains="/manifests/")
    with pytest.raises(RegistryUnavailable, match="still failing after retries"):
        client.manifest("svc-any", "v1")


def test_a_declined_mount_falls_back_to_a_streamed_copy(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy,
        client: RegistryClient) -> None:
    layout, digest = pushed(tmp_path, registry, "svc-copy", layer_sizes=(5_000, 9_000_000))
    fault_proxy.refuse_mounts()
    fault_proxy.reset_stats()

    result = promote(client, "svc-copy", digest, "prod/svc-copy", "v1")

    blob_bytes = sum(b.size for b in client.manifest("svc-copy", digest).blobs)
    assert (result.blobs_mounted, result.blobs_copied) == (0, 3)
    assert result.bytes_copied == blob_bytes
    assert fault_proxy.stats().blob_request_bytes == blob_bytes
    assert client.manifest_digest("prod/svc-copy", "v1") == digest
    assert client.manifest("prod/svc-copy", "v1").blobs[-1].digest == layout.layer_digests[-1]


def test_tags_are_listed(tmp_path: Path, registry: LocalRegistry,
                         client: RegistryClient) -> None:
    layout, _ = pushed(tmp_path, registry, "svc-tags", "t0")
    for n in range(1, 5):
        push(layout, registry, "svc-tags", f"t{n}")
    assert sorted(client.list_tags("svc-tags", page_size=2)) == [f"t{n}" for n in range(5)]
    with pytest.raises(ImageNotFound, match="svc-no-tags: not found"):
        client.list_tags("svc-no-tags")


def test_a_manifest_that_does_not_hash_to_its_digest_is_rejected(
        tmp_path: Path, registry: LocalRegistry, client: RegistryClient) -> None:
    _, digest = pushed(tmp_path, registry, "svc-hash")
    manifest = client.manifest("svc-hash", digest)
    tampered = type(manifest)(json.dumps(json.loads(manifest.raw)).encode() + b" ",
                              manifest.media_type, manifest.digest)
    with pytest.raises(DigestMismatch):
        client.put_manifest("svc-hash", "tampered", tampered)
