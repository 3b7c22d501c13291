"""The throwaway certificate verifies with Python's ssl and is laid out for skopeo."""

from __future__ import annotations

import http.server
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.tls import TlsFiles, make_throwaway_cert
from tests.sandbox.helpers import https_server, request


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hello_server(tls_files: TlsFiles) -> Iterator[str]:
    with https_server(_Hello, tls_files) as endpoint:
        yield endpoint


def test_https_get_verifies_with_the_ca(hello_server: str, tls_files: TlsFiles) -> None:
    reply = request(hello_server, "GET", "/", tls_files)
    assert (reply.status, reply.body) == (200, b"hello")


def test_localhost_name_verifies_too(hello_server: str, tls_files: TlsFiles) -> None:
    port = hello_server.rsplit(":", 1)[1]
    assert request(f"https://localhost:{port}", "GET", "/", tls_files).status == 200


def test_another_ca_is_rejected(hello_server: str, tmp_path: Path) -> None:
    stranger = make_throwaway_cert(tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        request(hello_server, "GET", "/", stranger)


def test_ca_is_the_cert_and_cert_dir_holds_only_ca_crt(tls_files: TlsFiles) -> None:
    assert tls_files.ca == tls_files.cert
    directory = tls_files.cert_dir()
    assert [path.name for path in directory.iterdir()] == ["ca.crt"]
    assert (directory / "ca.crt").read_bytes() == tls_files.ca.read_bytes()
    assert tls_files.key.stat().st_mode & 0o077 == 0
