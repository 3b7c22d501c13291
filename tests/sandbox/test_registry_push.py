"""RegistryPusher pushes real, distinct images the registry serves, and its blobs only once."""

from __future__ import annotations

import uuid

import pytest

from sandbox.faults import FaultProxy
from sandbox.registry import LocalRegistry
from sandbox.registry_push import PushFailed, RegistryPusher
from sandbox.tls import TlsFiles
from shared.registry.client import RegistryClient, RegistryEndpoint
from shared.registry.manifests import OCI_INDEX, OCI_MANIFEST


def test_many_distinct_images_with_their_blobs_uploaded_once(
        fault_proxy: FaultProxy, tls_files: TlsFiles) -> None:
    repository = "push-" + uuid.uuid4().hex[:8]
    pusher = RegistryPusher(fault_proxy.endpoint, tls_files.ca)
    tags = [f"v1.{n}.0" for n in range(20)]

    digests = pusher.push_images(repository, tags)

    assert len(set(digests)) == 20
    assert fault_proxy.stats().by_method == {"POST": 2, "PUT": 22}  # two blobs, 20 manifests
    client = RegistryClient(RegistryEndpoint(fault_proxy.endpoint, "anonymous",
                                             str(tls_files.ca)))
    for tag, digest in zip(tags, digests, strict=True):
        manifest = client.manifest(repository, tag)
        assert (manifest.digest, manifest.media_type) == (digest, OCI_MANIFEST)
        assert all(client.blob_exists(repository, blob.digest) for blob in manifest.blobs)
    assert pusher.push_images(repository, tags[:1]) == digests[:1]  # deterministic


def test_the_same_tag_pushed_again_is_another_image(registry: LocalRegistry,
                                                    tls_files: TlsFiles) -> None:
    repository = "push-" + uuid.uuid4().hex[:8]
    pusher = RegistryPusher.of(registry)
    first = pusher.push_image(repository, "v1", "first")
    second = pusher.push_image(repository, "v1", "second")
    index = pusher.push_index(repository, "multi", [first, second])
    client = RegistryClient(RegistryEndpoint(registry.endpoint, "anonymous",
                                             str(tls_files.ca)))
    assert first != second and client.manifest_digest(repository, "v1") == second
    assert client.manifest(repository, "multi").media_type == OCI_INDEX
    assert [c.digest for c in client.manifest(repository, index).children] == [first, second]


def test_a_refused_push_says_what_and_why(registry: LocalRegistry) -> None:
    pusher = RegistryPusher.of(registry)
    refused = r"PUT .*/manifests/v1: HTTP 400 .*MANIFEST_BLOB_UNKNOWN"
    with pytest.raises(PushFailed, match=refused):
        pusher.put_manifest("push-" + uuid.uuid4().hex[:8], "v1", {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:" + "0" * 64, "size": 2}, "layers": []})
