"""Tag listing follows `Link: <…>; rel="next"` pages, as ACR serves them.

docker-registry 2.8 answers every tag in one page, so this uses a small HTTPS
server that pages like ACR: the real SDK client, faked at the network boundary.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from sandbox.tls import TlsFiles
from shared.registry.client import RegistryClient, RegistryEndpoint, next_page_link

TAGS = [f"v1.{n}" for n in range(7)]


class PagingRegistry(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        PagingRegistry.requests.append(self.path)
        url = urlparse(self.path)
        query = parse_qs(url.query)
        size, last = int(query.get("n", ["100"])[0]), query.get("last", [""])[0]
        start = TAGS.index(last) + 1 if last else 0
        page = TAGS[start:start + size]
        body = json.dumps({"name": "svc", "tags": page}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if start + size < len(TAGS):
            self.send_header("Link", f'</v2/svc/tags/list?last={page[-1]}&n={size}>; rel="next"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def paging_registry(tls_files: TlsFiles) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PagingRegistry)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    PagingRegistry.requests = []
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_page_is_followed(paging_registry: str, tls_files: TlsFiles) -> None:
    client = RegistryClient(RegistryEndpoint(paging_registry, "anonymous", str(tls_files.ca)))
    assert client.list_tags("svc", page_size=3) == TAGS
    assert PagingRegistry.requests == ["/v2/svc/tags/list?n=3",
                                       "/v2/svc/tags/list?last=v1.2&n=3",
                                       "/v2/svc/tags/list?last=v1.5&n=3"]


@pytest.mark.parametrize("header, expected", [
    ('</v2/a/tags/list?last=x&n=2>; rel="next"', "/v2/a/tags/list?last=x&n=2"),
    ('<https://r.io/v2/a/tags/list?last=x>;rel=next', "https://r.io/v2/a/tags/list?last=x"),
    ('</first>; rel="prev", </second>; rel="next"', "/second"),
    ('</only>; rel="prev"', None),
    (None, None),
])
def test_next_link(header: str | None, expected: str | None) -> None:
    assert next_page_link(header) == expected
