"""Where an image comes from: the standard OCI `source`, `revision` and `version` it declares.

Read by digest from the manifest's annotations and the config blob's labels (an index: its
own annotations, then its linux/amd64 child's annotations and config labels). Annotations
win over labels: they are what the publisher states about this very manifest, labels are
what the build baked in (often inherited from a base image). Never raises: a registry
error, an oversized config or absent labels come back as a `Provenance` that says why.
Does not build links or judge the values: see shared/releases/source_links.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from shared.text import one_line

from .errors import InvalidReference, RegistryError
from .manifests import Manifest

SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
VERSION = "org.opencontainers.image.version"
KEYS = {"source": SOURCE, "revision": REVISION, "version": VERSION}
LIMITS = {"source": 300, "revision": 100, "version": 128}
MAX_CONFIG_BYTES = 1024 * 1024  # a config larger than this is not read (labels unknown)
PLATFORM = "linux/amd64"
log = logging.getLogger(__name__)


class Blobs(Protocol):
    """What the reader needs of `RegistryClient`."""

    def manifest(self, repository: str, reference: str) -> Manifest: ...

    def read_blob(self, repository: str, digest: str) -> Any: ...


@dataclass(frozen=True)
class Provenance:
    """What an image says about its source; `problem` says why it could not be read."""

    digest: str
    source: str | None = None
    revision: str | None = None
    version: str | None = None
    problem: str | None = None

    @property
    def unknown_revision(self) -> str | None:
        """Why the revision is unknown (a registry problem, or no label); None when known."""
        if self.revision:
            return None
        return self.problem or f"the image carries no {REVISION} label or annotation"

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "source": self.source, "revision": self.revision,
                "version": self.version, "problem": self.problem}

    @classmethod
    def from_dict(cls, data: Any) -> Provenance | None:
        """The provenance `to_dict` wrote (values cleaned again); None for anything else."""
        if not isinstance(data, Mapping) or not isinstance(data.get("digest"), str):
            return None
        problem = data.get("problem")
        return cls(str(data["digest"]), **found(data, by_field=True),
                   problem=one_line(problem, 300) if isinstance(problem, str) else None)


def read_provenance(client: Blobs, repository: str, digest: str) -> Provenance:
    """The source, revision and version the image `repository@digest` declares."""
    try:
        top = client.manifest(repository, digest)
        declared = manifest_annotations(top)
        image = top
        if top.is_index:
            child = next((c for c in top.children if c.platform == PLATFORM), None)
            if child is None:
                return Provenance(digest, **found(declared), problem=(
                    f"the index has no {PLATFORM} image to read labels from"))
            image = client.manifest(repository, child.digest)
            declared = {**manifest_annotations(image), **declared}
        labels, problem = config_labels(client, repository, image)
    except (RegistryError, InvalidReference) as error:
        return Provenance(digest, problem=f"labels not read: {one_line(error, 250)}")
    except Exception as error:  # labels are never worth a release: say so, do not fail
        log.warning("labels of %s@%s not read: %r", repository, digest, error)
        return Provenance(digest, problem=f"labels not read: {type(error).__name__}")
    return Provenance(digest, **found({**labels, **declared}), problem=problem)


def config_labels(client: Blobs, repository: str,
                  image: Manifest) -> tuple[dict[str, Any], str | None]:
    """The config blob's `config.Labels`, and why they could not be read (or None)."""
    if not image.blobs:
        return {}, "the image has no config blob"
    config = image.blobs[0]
    if config.size > MAX_CONFIG_BYTES:
        return {}, (f"config blob is {config.size} bytes, over the {MAX_CONFIG_BYTES} byte"
                    " limit: its labels are not read")
    data = bytearray()
    for chunk in client.read_blob(repository, config.digest):
        data.extend(chunk)
        if len(data) > MAX_CONFIG_BYTES:
            return {}, "config blob is larger than its descriptor says: its labels are not read"
    try:
        document = json.loads(bytes(data))
    except ValueError:
        return {}, "config blob is not JSON: its labels are not read"
    inner = document.get("config") if isinstance(document, dict) else None
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    return (dict(labels) if isinstance(labels, dict) else {}), None


def manifest_annotations(manifest: Manifest) -> dict[str, Any]:
    """The manifest's `annotations` (bytes already checked by `parse_manifest`)."""
    try:
        document = json.loads(manifest.raw)
    except ValueError:
        return {}
    value = document.get("annotations") if isinstance(document, dict) else None
    return dict(value) if isinstance(value, dict) else {}


def found(values: Mapping[str, Any], *, by_field: bool = False) -> dict[str, str | None]:
    """`source`, `revision`, `version` from labels/annotations (or, `by_field`, a `to_dict`),
    cleaned: one line, capped; a source URL loses any user, password, query and fragment."""
    picked: dict[str, str | None] = {}
    for field, key in KEYS.items():
        value = values.get(field if by_field else key)
        text = one_line(value, LIMITS[field]) if isinstance(value, str) else ""
        picked[field] = text or None
    if picked["source"]:
        picked["source"] = clean_source(picked["source"]) or None
    return picked


def clean_source(text: str) -> str:
    """A source URL without credentials, query or fragment (a label is not a secret store,
    yet some builds put a token in the clone URL)."""
    parts = urlsplit(text) if "://" in text else None
    if parts is None or not parts.netloc:
        return text
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
