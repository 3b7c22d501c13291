"""What the registry says about a pushed image, asked before any release starts.

A webhook is a hint: the registry the policy names (never a host the event names) says
whether the digest is in the service's repository, whether it is an image a cluster can
run, and whether the pushed tag still names it. `Registry` is the seam ingestion asks;
`ClientRegistry` answers it over `shared.registry.client`. Does not decide what becomes
of the event: `decisions.image_verdict` does, and only a "not found" or "not an image"
ever becomes a verdict; a registry that cannot be asked raises `RegistryUnreachable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from shared.registry import registries
from shared.registry.client import QUICK_RETRY, RegistryClient, RegistryEndpoint
from shared.registry.errors import ImageNotFound, RegistryUnavailable, UnsupportedManifestError
from shared.registry.manifests import not_runnable

BLOB = "it is a blob (a layer or a config), not an image manifest"


@dataclass(frozen=True)
class ImageFacts:
    """What a repository holds at one digest, and whether a tag names that digest now."""

    found: bool  # a manifest is at this digest in this repository
    problem: str | None = None  # why it is no image a cluster can run (or what is there)
    media_type: str | None = None
    tag_current: bool | None = None  # None when the tag was not asked about


class RegistryUnreachable(Exception):
    """The registry could not confirm the image (unreachable, failing, refusing us):
    nothing was decided, the delivery should be tried again."""

    def __init__(self, registry: str, repository: str, failure: Exception) -> None:
        self.registry, self.repository, self.failure = registry, repository, failure
        super().__init__(f"registry {registry} could not confirm an image of {repository}:"
                         f" {failure}")


class Registry(Protocol):
    """What ingestion needs of the registry (async, like the rest of ingestion)."""

    async def image(self, endpoint: RegistryEndpoint, repository: str, digest: str,
                    tag: str | None) -> ImageFacts:
        """The facts for `repository@digest` (and `repository:tag` unless None); raises
        RegistryError when the registry cannot answer."""
        ...


def quick_client(endpoint: RegistryEndpoint) -> RegistryClient:
    """The process's client for `endpoint` with few, short retries (a webhook waits)."""
    return registries.for_endpoint(endpoint, QUICK_RETRY)


class ClientRegistry:
    """`Registry` over the synchronous registry client, in a thread per question."""

    def __init__(self, clients: Callable[[RegistryEndpoint], RegistryClient] = quick_client
                 ) -> None:
        self.clients = clients

    async def image(self, endpoint: RegistryEndpoint, repository: str, digest: str,
                    tag: str | None) -> ImageFacts:
        return await asyncio.to_thread(image_facts, self.clients(endpoint), repository, digest,
                                       tag)


def image_facts(client: RegistryClient, repository: str, digest: str, tag: str | None
                ) -> ImageFacts:
    """Read the tag's manifest first: while the tag still names the digest (the usual case)
    that one GET, its bytes verified against the digest, answers everything. Otherwise the
    manifest at the digest is read too."""
    if tag is None:
        return manifest_facts(client, repository, digest)
    try:
        named = client.manifest(repository, tag)
    except ImageNotFound:  # the tag is gone (or the repository never existed)
        named_digest = None
    except UnsupportedManifestError:  # the tag names something unreadable: which digest?
        named_digest = client.manifest_digest(repository, tag)
    else:
        if named.digest == digest:
            return ImageFacts(True, not_runnable(named), named.media_type, True)
        named_digest = named.digest
    facts = manifest_facts(client, repository, digest)
    return replace(facts, tag_current=named_digest == digest) if facts.found else facts


def manifest_facts(client: RegistryClient, repository: str, digest: str) -> ImageFacts:
    """Read the manifest at `digest` (its bytes are verified against it) and judge it."""
    try:
        manifest = client.manifest(repository, digest)
    except ImageNotFound:
        return ImageFacts(found=False)
    except UnsupportedManifestError as unreadable:
        return ImageFacts(found=True,
                          problem=f"a manifest this product cannot read ({unreadable.reason})")
    except RegistryUnavailable as failing:
        # docker-registry answers a blob's digest at /manifests/ with 500, which retries
        # cannot cure: a blob of this repository at that digest says what it is.
        if failing.status is not None and client.blob_exists(repository, digest):
            return ImageFacts(found=False, problem=BLOB)
        raise
    return ImageFacts(True, not_runnable(manifest), manifest.media_type)

