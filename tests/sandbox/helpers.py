"""Small HTTPS and registry helpers for the sandbox tests."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from sandbox.tls import TlsFiles

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def request(
    endpoint: str,
    method: str,
    path: str,
    tls: TlsFiles,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    """One HTTPS request to `endpoint` (`https://host:port`) trusting `tls.ca`."""
    url = urlsplit(endpoint)
    context = ssl.create_default_context(cafile=str(tls.ca))
    connection = http.client.HTTPSConnection(url.hostname, url.port, timeout=10, context=context)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def get_manifest(endpoint: str, repository: str, reference: str, tls: TlsFiles) -> Reply:
    reply = request(endpoint, "GET", f"/v2/{repository}/manifests/{reference}", tls,
                    headers={"Accept": MANIFEST_TYPES})
    assert reply.status == 200, reply.body
    return reply


def upload_blob(endpoint: str, repository: str, data: bytes, tls: TlsFiles) -> str:
    """Monolithic upload (POST then PUT ?digest=); returns the blob digest."""
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    started = request(endpoint, "POST", f"/v2/{repository}/blobs/uploads/", tls)
    assert started.status == 202, started.body
    location = urlsplit(started.headers["Location"])
    put = request(endpoint, "PUT", f"{location.path}?{location.query}&digest={digest}", tls,
                  headers={"Content-Type": "application/octet-stream"}, body=data)
    assert put.status == 201, put.body
    return digest


@contextmanager
def https_server(
    handler: type[http.server.BaseHTTPRequestHandler], tls: TlsFiles
) -> Iterator[str]:
    """Serve `handler` over TLS on a free port in a thread; yields `https://127.0.0.1:PORT`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
