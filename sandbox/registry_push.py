"""Fast pushes of many small distinct images straight over the registry API (HTTPS, test CA).

One tiny config blob and one tiny layer blob go into a repository once; each image is then
one manifest PUT whose annotation makes its digest distinct. A few hundred images take about
a second where skopeo takes a process per image. Also pushes raw blobs and arbitrary
manifests (charts, other artifacts, indexes) for tests of what the registry holds.
Not a general client: no auth, no chunked uploads, no mounts (see sandbox/images.py).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from sandbox.registry import LocalRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
ANNOTATION = "org.opencontainers.image.description"
TIMEOUT_S = 30.0
# An empty tar (two zero blocks): a valid layer of 1 KiB.
EMPTY_TAR = bytes(1024)


class PushFailed(RuntimeError):
    """The registry refused a push; the message names the request and the answer."""


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryPusher:
    """Pushes to one registry over one keep-alive HTTPS connection per thread."""

    def __init__(self, endpoint: str, ca: Path | str) -> None:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        self.host = parts.netloc
        self._address = (parts.hostname or "127.0.0.1", parts.port or 443)
        self._tls = ssl.create_default_context(cafile=str(ca))
        self._local = threading.local()
        self._image_blobs: set[str] = set()  # repositories that hold the shared blobs

    @classmethod
    def of(cls, registry: LocalRegistry) -> RegistryPusher:
        return cls(registry.endpoint, registry.tls.ca)

    # --- images ----------------------------------------------------------------------------

    def push_images(self, repository: str, tags: Sequence[str], label: str = "") -> list[str]:
        """One distinct small image per tag (the same tag twice: two images); their digests.

        The same repository, tag, position and `label` always give the same digest."""
        config, layer = self._shared_blobs(repository)
        return [self.put_manifest(repository, tag, image_manifest(
            config, layer, {ANNOTATION: f"{repository}:{tag} {label}/{index}"}))
            for index, tag in enumerate(tags)]

    def push_image(self, repository: str, tag: str, label: str = "") -> str:
        """One small image under `tag`; its digest."""
        (digest,) = self.push_images(repository, [tag], label)
        return digest

    def push_artifact(self, repository: str, tag: str, config_type: str,
                      layer_type: str = "application/octet-stream",
                      artifact_type: str | None = None) -> str:
        """An OCI manifest whose config (and layer) have the given types, e.g. a Helm chart."""
        config = self.push_blob(repository, json.dumps({"name": repository}).encode())
        layer = self.push_blob(repository, f"{repository}:{tag}".encode())
        manifest: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": config[0], "size": config[1]},
            "layers": [{"mediaType": layer_type, "digest": layer[0], "size": layer[1]}]}
        if artifact_type:
            manifest["artifactType"] = artifact_type
        return self.put_manifest(repository, tag, manifest)

    def push_index(self, repository: str, tag: str, children: Sequence[str]) -> str:
        """An OCI index over manifests already in `repository` (by digest); its digest."""
        entries = []
        for child in children:
            raw = self._request("GET", f"/v2/{repository}/manifests/{child}",
                                headers={"Accept": OCI_MANIFEST})
            entries.append({"mediaType": OCI_MANIFEST, "digest": child, "size": len(raw),
                            "platform": {"os": "linux", "architecture": "amd64"}})
        return self.put_manifest(repository, tag, {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                   "manifests": entries})

    # --- primitives ------------------------------------------------------------------------

    def push_blob(self, repository: str, data: bytes) -> tuple[str, int]:
        """Upload `data` as a blob of `repository` (POST, then PUT); (digest, size)."""
        digest = digest_of(data)
        location = self._request("POST", f"/v2/{repository}/blobs/uploads/", expect=202,
                                 location=True)
        separator = "&" if "?" in location else "?"
        self._request("PUT", f"{location}{separator}{urlencode({'digest': digest})}", data,
                      {"Content-Type": "application/octet-stream"}, expect=201)
        return digest, len(data)

    def put_manifest(self, repository: str, reference: str, manifest: dict[str, Any]) -> str:
        """PUT the manifest under a tag (or its digest); the digest the registry stored."""
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        self._request("PUT", f"/v2/{repository}/manifests/{reference}", raw,
                      {"Content-Type": manifest["mediaType"]}, expect=201)
        return digest_of(raw)

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest (the registry allows deletes)."""
        self._request("DELETE", f"/v2/{repository}/manifests/{digest}", expect=202)

    def _shared_blobs(self, repository: str) -> tuple[tuple[str, int], tuple[str, int]]:
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [digest_of(EMPTY_TAR)]},
                             "config": {}}, separators=(",", ":")).encode()
        if repository not in self._image_blobs:
            self.push_blob(repository, config)
            self.push_blob(repository, EMPTY_TAR)
            self._image_blobs.add(repository)
        return (digest_of(config), len(config)), (digest_of(EMPTY_TAR), len(EMPTY_TAR))

    def _request(self, method: str, path: str, data: bytes | None = None,
                 headers: dict[str, str] | None = None, *, expect: int = 200,
                 location: bool = False) -> Any:
        if "://" in path:  # an absolute upload Location
            path = urlsplit(path)._replace(scheme="", netloc="").geturl()
        connection = self._connection()
        try:
            connection.request(method, path, body=data, headers=headers or {})
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self._local.connection = None
            connection.close()
            raise
        if response.status != expect:
            raise PushFailed(f"{method} {self.host}{path}: HTTP {response.status}"
                             f" {body[:300].decode(errors='replace')}")
        if location:
            found = response.getheader("Location")
            if not found:
                raise PushFailed(f"{method} {self.host}{path}: no Location header")
            return found
        return body

    def _connection(self) -> http.client.HTTPSConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(*self._address, timeout=TIMEOUT_S,
                                                     context=self._tls)
            self._local.connection = connection
        return connection


def image_manifest(config: tuple[str, int], layer: tuple[str, int],
                   annotations: dict[str, str]) -> dict[str, Any]:
    """An OCI image manifest of one config and one layer, with annotations."""
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1]},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer[0], "size": layer[1]}],
            "annotations": annotations}
