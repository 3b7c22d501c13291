"""Image manifests of every kind a registry serves, parsed into what promotion needs.

Handles OCI image manifests and indexes and Docker schema 2 manifests and
manifest lists. Keeps the exact bytes: a manifest's digest is the sha256 of
those bytes, so it is re-published byte for byte, never re-serialized.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from shared.failure_kinds import Permanent
from shared.json_input import JsonInputError, read_json

from .references import DIGEST

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# What a container runtime can run: an image's config is one of these (a Helm chart's is not).
IMAGE_CONFIG_TYPES = frozenset({"application/vnd.oci.image.config.v1+json",
                                "application/vnd.docker.container.image.v1+json"})
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # what the OCI distribution spec asks registries to accept
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


class UnsupportedManifest(Permanent, ValueError):
    """The registry returned a manifest this product does not handle, or not a manifest."""


@dataclass(frozen=True)
class Descriptor:
    """A reference to a blob or a child manifest: media type, digest, size (and platform)."""

    media_type: str
    digest: str
    size: int
    platform: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A manifest's bytes with its type, digest, child manifests and blobs."""

    raw: bytes
    media_type: str
    digest: str
    children: tuple[Descriptor, ...] = ()
    blobs: tuple[Descriptor, ...] = ()
    artifact_type: str | None = None  # OCI 1.1 `artifactType`: set on artifacts, not images

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def config_type(self) -> str | None:
        """The config blob's media type (an image manifest's first blob); None for an index."""
        return None if self.is_index or not self.blobs else self.blobs[0].media_type

    @property
    def platforms(self) -> list[str]:
        return [c.platform for c in self.children if c.platform]


def digest_of(raw: bytes) -> str:
    """`sha256:<hex>` of the bytes, as registries compute a manifest's digest."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def parse_manifest(raw: bytes, content_type: str | None = None) -> Manifest:
    """Parse manifest bytes; the media type comes from the document, else the header."""
    try:
        document = read_json(raw, limit=MAX_MANIFEST_BYTES, what="manifest")
    except JsonInputError as bad:
        raise UnsupportedManifest(f"manifest is not JSON we read: {bad}") from bad
    if not isinstance(document, dict):
        raise UnsupportedManifest("manifest is not a JSON object")
    media_type = _media_type(document, content_type)
    artifact = document.get("artifactType")
    artifact_type = artifact if isinstance(artifact, str) and artifact else None
    if media_type in INDEX_TYPES:
        children = tuple(_descriptor(d, "manifests") for d in _list(document, "manifests"))
        return Manifest(raw, media_type, digest_of(raw), children=children,
                        artifact_type=artifact_type)
    blobs = (_descriptor(document.get("config"), "config"),
             *(_descriptor(d, "layers") for d in _list(document, "layers")))
    return Manifest(raw, media_type, digest_of(raw), blobs=tuple(blobs),
                    artifact_type=artifact_type)


def not_runnable(manifest: Manifest) -> str | None:
    """Why a cluster cannot run this manifest as a container image; None when it can.

    An index is taken as an image (its children are what the runtime picks from); an
    image manifest needs an image config type; OCI artifacts declare `artifactType`."""
    if manifest.artifact_type:
        return f"an OCI artifact of type {manifest.artifact_type}"
    config = manifest.config_type
    if config is None or config in IMAGE_CONFIG_TYPES:
        return None
    if config == HELM_CONFIG:
        return f"a Helm chart (config type {config})"
    return f"an artifact with config type {config or '(none)'}"


def platform_name(platform: Any) -> str | None:
    """`os/architecture[/variant]` of an index entry's platform, or None."""
    if not isinstance(platform, dict) or not platform.get("os"):
        return None
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(p) for p in parts if p)


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    header = (content_type or "").split(";")[0].strip()
    if document.get("schemaVersion") == 1:
        raise UnsupportedManifest("Docker schema 1 manifests are not supported; push the image"
                                  " again with a current client")
    for candidate in (declared, header):
        if candidate in INDEX_TYPES or candidate in IMAGE_TYPES:
            return candidate
    if "manifests" in document:
        return OCI_INDEX
    if "layers" in document and "config" in document:
        return OCI_MANIFEST
    raise UnsupportedManifest(f"unsupported manifest media type {declared or header!r}")


def _list(document: dict[str, Any], field: str) -> list[Any]:
    value = document.get(field)
    if not isinstance(value, list):
        raise UnsupportedManifest(f"manifest field {field!r} is missing or not a list")
    return value


def _descriptor(value: Any, field: str) -> Descriptor:
    if not isinstance(value, dict):
        raise UnsupportedManifest(f"manifest field {field!r} holds a non-object descriptor")
    digest, size = value.get("digest"), value.get("size")
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise UnsupportedManifest(f"descriptor in {field!r} has an invalid digest {digest!r}")
    if not isinstance(size, int) or size < 0:
        raise UnsupportedManifest(f"descriptor {digest} in {field!r} has an invalid size")
    return Descriptor(str(value.get("mediaType", "")), digest, size,
                      platform_name(value.get("platform")))
