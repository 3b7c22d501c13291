"""FaultProxy: forwards to the registry, injects statuses and resets, refuses mounts, counts."""

from __future__ import annotations

import http.client
import http.server
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from azure.containerregistry import ContainerRegistryClient

from sandbox.faults import FaultProxy
from sandbox.images import build_image, push
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from tests.sandbox.helpers import https_server, request, upload_blob


@pytest.fixture(scope="module")
def blob(registry: LocalRegistry, tls_files: TlsFiles) -> tuple[str, bytes]:
    """A 300 KB blob stored in `faults/source` (directly, not through the proxy)."""
    data = os.urandom(300_000)
    return upload_blob(registry.endpoint, "faults/source", data, tls_files), data


def test_forwards_head_get_and_range(
    fault_proxy: FaultProxy, tls_files: TlsFiles, blob: tuple[str, bytes]
) -> None:
    digest, data = blob
    path = f"/v2/faults/source/blobs/{digest}"
    head = request(fault_proxy.endpoint, "HEAD", path, tls_files)
    assert (head.status, head.headers["Content-Length"], head.body) == (200, str(len(data)), b"")
    assert head.headers["Docker-Content-Digest"] == digest
    assert request(fault_proxy.endpoint, "GET", path, tls_files).body == data
    ranged = request(fault_proxy.endpoint, "GET", path, tls_files,
                     headers={"Range": "bytes=10-19"})
    assert (ranged.status, ranged.body) == (206, data[10:20])
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(data)}"


def test_upload_locations_point_at_the_proxy(fault_proxy: FaultProxy, tls_files: TlsFiles) -> None:
    started = request(fault_proxy.endpoint, "POST", "/v2/faults/upload/blobs/uploads/", tls_files)
    assert started.status == 202
    assert urlsplit(started.headers["Location"]).netloc == fault_proxy.host
    digest = upload_blob(fault_proxy.endpoint, "faults/upload", b"via proxy", tls_files)
    stats = fault_proxy.stats()
    assert stats.by_method == {"POST": 2, "PUT": 1}
    assert stats.blob_request_bytes == len(b"via proxy")
    got = request(fault_proxy.endpoint, "GET", f"/v2/faults/upload/blobs/{digest}", tls_files)
    assert got.body == b"via proxy"
    assert fault_proxy.stats().blob_response_bytes == len(b"via proxy")


def test_injected_429_then_the_next_request_succeeds(
    fault_proxy: FaultProxy, tls_files: TlsFiles
) -> None:
    fault_proxy.inject(429, retry_after="0")
    refused = request(fault_proxy.endpoint, "GET", "/v2/", tls_files)
    assert (refused.status, refused.headers["Retry-After"]) == (429, "0")
    assert json.loads(refused.body)["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert request(fault_proxy.endpoint, "GET", "/v2/", tls_files).status == 200
    stats = fault_proxy.stats()
    assert (stats.requests, stats.injected) == (2, 1)


def test_injection_matches_method_and_path(
    fault_proxy: FaultProxy, tls_files: TlsFiles, blob: tuple[str, bytes]
) -> None:
    digest, _ = blob
    fault_proxy.inject(503, times=2, method="HEAD", path_contains="/blobs/")
    path = f"/v2/faults/source/blobs/{digest}"
    assert request(fault_proxy.endpoint, "GET", "/v2/", tls_files).status == 200
    assert request(fault_proxy.endpoint, "GET", path, tls_files).status == 200
    assert [request(fault_proxy.endpoint, "HEAD", path, tls_files).status
            for _ in range(3)] == [503, 503, 200]


def test_dropped_connection_then_recovery(fault_proxy: FaultProxy, tls_files: TlsFiles) -> None:
    fault_proxy.drop_connections(path_contains="/v2/")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        request(fault_proxy.endpoint, "GET", "/v2/", tls_files)
    assert request(fault_proxy.endpoint, "GET", "/v2/", tls_files).status == 200
    assert fault_proxy.stats().dropped == 1


def test_mount_is_forwarded_or_refused(
    fault_proxy: FaultProxy, tls_files: TlsFiles, blob: tuple[str, bytes]
) -> None:
    digest, _ = blob
    mount = "/v2/faults/{}/blobs/uploads/?mount=" + digest + "&from=faults/source"
    mounted = request(fault_proxy.endpoint, "POST", mount.format("mounted"), tls_files)
    assert mounted.status == 201
    assert mounted.headers["Location"].endswith(f"/v2/faults/mounted/blobs/{digest}")

    fault_proxy.refuse_mounts()
    refused = request(fault_proxy.endpoint, "POST", mount.format("refused"), tls_files)
    assert refused.status == 202
    assert "/v2/faults/refused/blobs/uploads/" in refused.headers["Location"]
    head = request(fault_proxy.endpoint, "HEAD", f"/v2/faults/refused/blobs/{digest}", tls_files)
    assert head.status == 404
    assert fault_proxy.stats().mounts == 2


def test_reset_between_tests_left_no_faults(fault_proxy: FaultProxy, tls_files: TlsFiles) -> None:
    assert fault_proxy.stats().requests == 0
    fault_proxy.inject(500, times=5)
    fault_proxy.refuse_mounts()
    fault_proxy.reset()
    assert request(fault_proxy.endpoint, "GET", "/v2/", tls_files).status == 200


def test_skopeo_push_through_the_proxy_counts_blob_bytes(
    fault_proxy: FaultProxy, tls_files: TlsFiles, tmp_path: Path
) -> None:
    layout = build_image(tmp_path, layer_sizes=[3 << 20, 1000], seed="via-proxy")
    assert push(layout, fault_proxy.host, "faults/pushed", tls=tls_files) == layout.digest
    stats = fault_proxy.stats()
    layer_bytes = sum(
        (layout.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).stat().st_size
        for digest in layout.layer_digests
    )
    assert layer_bytes <= stats.blob_request_bytes < layer_bytes + 4096
    assert stats.by_method.get("PATCH", 0) + stats.by_method.get("PUT", 0) >= 3


def test_synchronous_azure_sdk_retries_an_injected_429(
    fault_proxy: FaultProxy, registry: LocalRegistry, tls_files: TlsFiles, tmp_path: Path
) -> None:
    layout = build_image(tmp_path, layer_sizes=[100], seed="sdk")
    push(layout, registry, "faults/sdk", "v1")
    client = ContainerRegistryClient(
        fault_proxy.endpoint, audience="https://containerregistry.azure.net",
        connection_verify=str(tls_files.ca),
    )
    fault_proxy.inject(429, retry_after="0", path_contains="/manifests/")
    assert client.get_manifest("faults/sdk", "v1").digest == layout.digest
    assert fault_proxy.stats().injected == 1


class _Redirector(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(307)
        self.send_header("Location", "https://storage.example/blob?sig=abc")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_redirects_are_passed_on_not_followed(tls_files: TlsFiles) -> None:
    with https_server(_Redirector, tls_files) as upstream, FaultProxy(upstream, tls_files) as proxy:
        reply = request(proxy.endpoint, "GET", "/v2/any/blobs/sha256:00", tls_files)
    assert (reply.status, reply.headers["Location"]) == (
        307, "https://storage.example/blob?sig=abc")


def test_unreachable_upstream_is_a_502(tls_files: TlsFiles) -> None:
    with FaultProxy("https://127.0.0.1:9", tls_files) as proxy:
        reply = request(proxy.endpoint, "GET", "/v2/", tls_files)
    assert reply.status == 502
    assert json.loads(reply.body)["errors"][0]["code"] == "UNAVAILABLE"


def test_restart_keeps_the_port(registry: LocalRegistry, tls_files: TlsFiles) -> None:
    proxy = FaultProxy(registry.endpoint, tls_files)
    with proxy:
        port = proxy.port
    with proxy:
        assert proxy.port == port
        assert request(proxy.endpoint, "GET", "/v2/", tls_files).status == 200
