"""The registry POSTs distribution's notification envelopes, with the configured headers."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.images import OCI_MANIFEST, build_image, push
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles

WAIT_SECONDS = 10


class _Sink(http.server.ThreadingHTTPServer):
    """Records every POSTed envelope with its headers."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/registry-events"

    def events(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(headers, event) for headers, body in self.received for event in body["events"]]


class _SinkHandler(http.server.BaseHTTPRequestHandler):
    server: _Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[_Sink]:
    server = _Sink()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_push_sends_blob_and_manifest_events(
    sink: _Sink, tmp_path: Path, tls_files: TlsFiles
) -> None:
    layout = build_image(tmp_path / "image", layer_sizes=[1000, 2000], seed="notify")
    local = LocalRegistry(tmp_path / "registry", tls_files, notify_url=sink.url,
                          notify_headers={"Authorization": "Bearer sink-secret"})
    with local:
        digest = push(layout, local, "team/app", "v1.2.3")
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and not any(
            event["target"].get("tag") for _, event in sink.events()
        ):
            time.sleep(0.05)

    pushes = [(headers, event) for headers, event in sink.events() if event["action"] == "push"]
    assert {headers["Authorization"] for headers, _ in pushes} == {"Bearer sink-secret"}
    manifests = [event for _, event in pushes if event["target"]["mediaType"] == OCI_MANIFEST]
    assert len(manifests) == 1, sink.received
    (manifest,) = manifests
    assert manifest["target"]["tag"] == "v1.2.3"
    assert manifest["target"]["digest"] == digest
    assert manifest["target"]["repository"] == "team/app"
    assert manifest["request"]["method"] == "PUT"
    blobs = [event["target"] for _, event in pushes if event is not manifest]
    assert {target["digest"] for target in blobs} >= set(layout.layer_digests)
    assert {target["mediaType"] for target in blobs} == {"application/octet-stream"}
    assert all("tag" not in target for target in blobs)
