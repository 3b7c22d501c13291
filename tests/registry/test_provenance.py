"""Reading an image's OCI source, revision and version from a real registry (docker-registry
over TLS, through the fault proxy): labels, annotations, an index, none, and failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.faults import FaultProxy
from sandbox.images import build_image, push
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.registry.client import RegistryClient, RegistryEndpoint, RetrySettings
from shared.registry.provenance import (
    MAX_CONFIG_BYTES,
    REVISION,
    SOURCE,
    VERSION,
    Provenance,
    read_provenance,
)

FAST_RETRY = RetrySettings(total=1, backoff_factor=0.01, backoff_max=0.05)
REV_A = "a" * 40
REV_B = "b" * 40


@pytest.fixture
def client(fault_proxy: FaultProxy, tls_files: TlsFiles) -> RegistryClient:
    endpoint = RegistryEndpoint(fault_proxy.endpoint, "anonymous", str(tls_files.ca))
    return RegistryClient(endpoint, retry=FAST_RETRY)


def pushed(tmp_path: Path, registry: LocalRegistry, repository: str, **options: object) -> str:
    layout = build_image(tmp_path / repository, layer_sizes=[256], seed=repository, tag="v1",
                         **options)  # type: ignore[arg-type]
    return push(layout, registry, repository, "v1")


def test_labels_of_the_config_blob_are_read(tmp_path: Path, registry: LocalRegistry,
                                            client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-labels", labels={
        SOURCE: "https://github.com/contoso/delivery.git", REVISION: REV_A, VERSION: "1.4.2"})

    found = read_provenance(client, "prov-labels", digest)

    assert found == Provenance(digest, "https://github.com/contoso/delivery.git", REV_A,
                               "1.4.2")
    assert found.unknown_revision is None


def test_annotations_win_over_labels(tmp_path: Path, registry: LocalRegistry,
                                     client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-both",
                    labels={SOURCE: "https://github.com/base/image", REVISION: REV_A,
                            VERSION: "base"},
                    annotations={REVISION: REV_B, VERSION: "2.0.0"})

    found = read_provenance(client, "prov-both", digest)

    # The source only the labels name is kept; revision and version come from annotations.
    assert (found.source, found.revision, found.version) == (
        "https://github.com/base/image", REV_B, "2.0.0")


def test_an_index_is_read_through_its_linux_amd64_child(
        tmp_path: Path, registry: LocalRegistry, client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-index", platforms=["linux/arm64", "linux/amd64"],
                    labels={SOURCE: "https://dev.azure.com/o/p/_git/r", REVISION: REV_A},
                    annotations={VERSION: "3.0.0"})

    found = read_provenance(client, "prov-index", digest)

    assert (found.digest, found.source, found.revision, found.version, found.problem) == (
        digest, "https://dev.azure.com/o/p/_git/r", REV_A, "3.0.0", None)


def test_an_index_without_linux_amd64_says_so(tmp_path: Path, registry: LocalRegistry,
                                              client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-arm", platforms=["linux/arm64"],
                    labels={REVISION: REV_A}, annotations={VERSION: "4.0.0"})

    found = read_provenance(client, "prov-arm", digest)

    assert found.revision is None and found.version == "4.0.0"
    assert found.unknown_revision == "the index has no linux/amd64 image to read labels from"


def test_an_unlabelled_image_says_so(tmp_path: Path, registry: LocalRegistry,
                                     client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-none")

    found = read_provenance(client, "prov-none", digest)

    assert (found.source, found.revision, found.version, found.problem) == (
        None, None, None, None)
    assert found.unknown_revision == f"the image carries no {REVISION} label or annotation"


def test_credentials_in_the_source_url_are_dropped(tmp_path: Path, registry: LocalRegistry,
                                                   client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-token", labels={
        SOURCE: "https://x-token:ghp_secret123@github.com/contoso/delivery?ref=main#top",
        REVISION: f"  {REV_A}\n"})

    found = read_provenance(client, "prov-token", digest)

    assert found.source == "https://github.com/contoso/delivery"
    assert found.revision == REV_A
    assert "ghp_secret123" not in repr(found.to_dict())


def test_a_config_over_the_limit_is_not_read(tmp_path: Path, registry: LocalRegistry,
                                             fault_proxy: FaultProxy,
                                             client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-big", labels={
        REVISION: REV_A, "padding": "x" * (MAX_CONFIG_BYTES + 1)})
    fault_proxy.reset_stats()

    found = read_provenance(client, "prov-big", digest)

    assert found.revision is None
    assert found.problem is not None and "over the 1048576 byte limit" in found.problem
    assert fault_proxy.stats().blob_response_bytes == 0  # the blob was never fetched


def test_a_registry_error_answers_unknown_with_the_reason(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy,
        client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-down", labels={REVISION: REV_A})
    fault_proxy.inject(503, times=10, path_contains="/prov-down/")

    found = read_provenance(client, "prov-down", digest)

    assert found.revision is None and found.problem is not None
    assert found.problem.startswith(f"labels not read: registry {fault_proxy.host}:"
                                    f" prov-down@{digest}:")
    assert "HTTP 503" in found.problem


def test_a_missing_blob_or_image_answers_unknown(tmp_path: Path, registry: LocalRegistry,
                                                 fault_proxy: FaultProxy,
                                                 client: RegistryClient) -> None:
    digest = pushed(tmp_path, registry, "prov-gone", labels={REVISION: REV_A})
    fault_proxy.inject(404, times=1, path_contains="/blobs/")

    config_missing = read_provenance(client, "prov-gone", digest)
    elsewhere = read_provenance(client, "prov-nowhere", digest)

    assert config_missing.problem is not None and "not found" in config_missing.problem
    assert elsewhere.problem is not None and "not found" in elsewhere.problem


def test_the_stored_form_reads_back_cleaned() -> None:
    found = Provenance("sha256:" + "1" * 64, "https://github.com/o/r", REV_A, "1.0.0")

    assert Provenance.from_dict(found.to_dict()) == found
    assert Provenance.from_dict({"digest": "sha256:x", "source": "https://u:p@h/x",
                                 "revision": 7}) == Provenance("sha256:x", "https://h/x")
    assert Provenance.from_dict(["not", "a", "dict"]) is None
