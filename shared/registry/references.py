"""Names of things in a registry: repositories, tags, digests (OCI distribution rules).

Pure functions that validate and split references; nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def check_repository(name: str) -> str:
    """Return `name` if it is a valid repository name, else raise InvalidReference."""
    if not isinstance(name, str) or len(name) > 255 or not REPOSITORY.match(name):
        raise InvalidReference(f"invalid repository name {name!r}: lowercase letters, digits and"
                               " separators (. _ __ -) in /-separated parts")
    return name


def check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not TAG.match(tag):
        raise InvalidReference(f"invalid tag {tag!r}: up to 128 of [A-Za-z0-9_.-], not starting"
                               " with . or -")
    return tag


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise InvalidReference(f"invalid digest {digest!r}: expected sha256: and 64 hex digits")
    return digest


def is_digest(reference: str) -> bool:
    return bool(DIGEST.match(reference))


def check_reference(reference: str) -> str:
    """A tag or a digest."""
    return check_digest(reference) if reference.startswith("sha256:") else check_tag(reference)


@dataclass(frozen=True)
class ImageName:
    """`repository` plus a tag or digest, as in `prod/delivery:v1.4.2` or `delivery@sha256:…`."""

    repository: str
    reference: str

    @classmethod
    def parse(cls, text: str) -> ImageName:
        """Parse `repo:tag` or `repo@sha256:…` (no registry host)."""
        if "@" in text:
            repository, _, reference = text.partition("@")
            return cls(check_repository(repository), check_digest(reference))
        repository, colon, tag = text.rpartition(":")
        if not colon or "/" in tag:
            raise InvalidReference(f"image {text!r} needs a tag or digest (repo:tag, repo@digest)")
        return cls(check_repository(repository), check_tag(tag))

    def __str__(self) -> str:
        separator = "@" if is_digest(self.reference) else ":"
        return f"{self.repository}{separator}{self.reference}"


def promotion_target(source_repository: str, namespace: str) -> str:
    """The repository a promotion writes to: `delivery` in namespace `prod/` → `prod/delivery`."""
    namespace = namespace.strip("/")
    if not namespace:
        raise InvalidReference("promotion namespace is empty")
    source = check_repository(source_repository)
    if source == namespace or source.startswith(namespace + "/"):
        raise InvalidReference(f"repository {source!r} is already in namespace {namespace + '/'!r}")
    return check_repository(f"{namespace}/{source}")
