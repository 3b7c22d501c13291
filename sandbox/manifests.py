"""Many small distinct images pushed straight over the registry API, for tests that need real
digests in bulk.

`push_images` uploads one config and one layer blob, then PUTs one OCI image manifest per tag
that differ only in an annotation, over one kept-alive HTTPS connection: a hundred images
take well under a second where `skopeo copy` per image takes a process each. The images are
real (the registry holds every blob they name) but tiny and all alike underneath; use
`sandbox.images` for images of a given size, platforms or layers.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sandbox.images import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST
from sandbox.registry import LocalRegistry

TIMEOUT_S = 10.0


class ManifestPushError(RuntimeError):
    """The registry refused a blob or manifest upload."""


@dataclass(frozen=True)
class PushedImage:
    """One image the registry now holds: `repository:tag` at `digest`."""

    repository: str
    tag: str
    digest: str


def push_images(registry: LocalRegistry, repository: str, tags: Sequence[str], *,
                seed: str = "sandbox") -> list[PushedImage]:
    """Push one distinct image per tag to `repository` (same blobs, one manifest each)."""
    connection = http.client.HTTPSConnection("127.0.0.1", registry.port, timeout=TIMEOUT_S,
                                             context=registry.ssl_context())
    try:
        layer, diff_id = _layer(seed)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
        blobs = [_upload(connection, repository, OCI_CONFIG, config),
                 _upload(connection, repository, OCI_LAYER_GZIP, layer)]
        return [_put_manifest(connection, repository, tag, blobs, seed) for tag in tags]
    finally:
        connection.close()


def _layer(seed: str) -> tuple[bytes, str]:
    """A gzipped tar of one small file, and its diff id (digest of the tar)."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        data = f"sandbox image {seed}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    plain = tar.getvalue()
    return gzip.compress(plain, mtime=0), _digest(plain)


def _upload(connection: http.client.HTTPSConnection, repository: str, media_type: str,
            data: bytes) -> dict[str, object]:
    """A monolithic blob upload (POST, then PUT with the digest); its descriptor."""
    digest = _digest(data)
    status, headers, body = _request(connection, "POST", f"/v2/{repository}/blobs/uploads/")
    if status != 202:
        raise ManifestPushError(f"starting a blob upload to {repository}: HTTP {status} {body!r}")
    location = urlsplit(headers["Location"])
    status, _, body = _request(connection, "PUT",
                               f"{location.path}?{location.query}&digest={digest}", data,
                               {"Content-Type": "application/octet-stream"})
    if status != 201:
        raise ManifestPushError(f"uploading blob {digest} to {repository}: HTTP {status}"
                                f" {body!r}")
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _put_manifest(connection: http.client.HTTPSConnection, repository: str, tag: str,
                  blobs: list[dict[str, object]], seed: str) -> PushedImage:
    config, layer = blobs
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                           "layers": [layer],
                           "annotations": {"org.example.sandbox": f"{seed}/{tag}"}}).encode()
    status, headers, body = _request(connection, "PUT", f"/v2/{repository}/manifests/{tag}",
                                     manifest, {"Content-Type": OCI_MANIFEST})
    digest = _digest(manifest)
    if status != 201 or headers.get("Docker-Content-Digest") != digest:
        raise ManifestPushError(f"putting manifest {repository}:{tag}: HTTP {status} {body!r}")
    return PushedImage(repository, tag, digest)


def _request(connection: http.client.HTTPSConnection, method: str, path: str,
             body: bytes | None = None, headers: dict[str, str] | None = None,
             ) -> tuple[int, dict[str, str], bytes]:
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, dict(response.headers), response.read()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
