"""Promotion of an image, by digest, to a tag in another repository.

Within one registry every blob is mounted from the source repository (OCI
cross-repository mount), concurrently; only manifests travel, byte for byte,
children by digest first, then the top manifest by tag. A registry that
declines a mount (202) gets a streamed copy with bounded memory instead. Into
another registry blobs are streamed unless already there; on Azure,
`acr_import.py` lets ACR copy server-side instead.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .client import RegistryClient
from .errors import DigestMismatch, TagConflict
from .manifests import Descriptor, Manifest
from .references import check_digest, check_repository, check_tag

MOUNT_WORKERS = 8


@dataclass
class PromotionResult:
    """What a promotion did, as plain JSON for activities and the ledger."""

    source: str
    target: str
    digest: str
    media_type: str
    platforms: list[str] = field(default_factory=list)
    unchanged: bool = False
    blobs_mounted: int = 0
    blobs_copied: int = 0
    blobs_present: int = 0
    bytes_copied: int = 0
    manifests_written: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "target": self.target, "digest": self.digest,
                "mediaType": self.media_type, "platforms": self.platforms,
                "unchanged": self.unchanged, "blobsMounted": self.blobs_mounted,
                "blobsCopied": self.blobs_copied, "blobsPresent": self.blobs_present,
                "bytesCopied": self.bytes_copied, "manifestsWritten": self.manifests_written}


def promote(source: RegistryClient, source_repository: str, digest: str,
            target_repository: str, tag: str, *, target: RegistryClient | None = None,
            allow_overwrite: bool = False) -> PromotionResult:
    """Publish `source_repository@digest` as `target_repository:tag`; verify the digest after.

    Idempotent: a target tag already at `digest` is left alone (no writes). A target tag
    at another digest is refused with TagConflict unless `allow_overwrite`.
    """
    target = target or source
    top, result = prepare(source, source_repository, digest, target, target_repository, tag,
                          allow_overwrite=allow_overwrite)
    if result.unchanged:
        return result
    children = [source.manifest(source_repository, c.digest) for c in top.children]
    _transfer_blobs(source, source_repository, target, target_repository,
                    _unique_blobs([top, *children]), result)
    for child in children:
        target.put_manifest(target_repository, child.digest, child)
    target.put_manifest(target_repository, tag, top)
    result.manifests_written = len(children) + 1
    verify_landed(target, target_repository, tag, digest)
    return result


def prepare(source: RegistryClient, source_repository: str, digest: str,
            target: RegistryClient, target_repository: str, tag: str, *,
            allow_overwrite: bool) -> tuple[Manifest, PromotionResult]:
    """Check names, read the source manifest and the target tag; `unchanged` if done already."""
    check_repository(source_repository)
    check_digest(digest)
    check_repository(target_repository)
    check_tag(tag)
    top = source.manifest(source_repository, digest)
    result = PromotionResult(
        source=f"{source.endpoint.host}/{source_repository}@{digest}",
        target=f"{target.endpoint.host}/{target_repository}:{tag}",
        digest=digest, media_type=top.media_type, platforms=top.platforms)
    current = target.manifest_digest(target_repository, tag)
    if current == digest:
        result.unchanged = True
    elif current is not None and not allow_overwrite:
        raise conflict(target, target_repository, tag, current, digest)
    return top, result


def verify_landed(target: RegistryClient, repository: str, tag: str, digest: str) -> None:
    """The target tag must now resolve to exactly the promoted digest."""
    landed = target.manifest_digest(repository, tag)
    if landed != digest:
        raise DigestMismatch(target.endpoint.host, repository, tag,
                             f"resolves to {landed} after promotion, expected {digest}")


def conflict(target: RegistryClient, repository: str, tag: str, current: str,
             digest: str) -> TagConflict:
    return TagConflict(target.endpoint.host, repository, tag,
                       f"already points to {current} (expected {digest}); refusing to overwrite")


def _transfer_blobs(source: RegistryClient, source_repository: str, target: RegistryClient,
                    target_repository: str, blobs: list[Descriptor],
                    result: PromotionResult) -> None:
    same_registry = source.endpoint.url == target.endpoint.url

    def transfer(blob: Descriptor) -> tuple[str, int]:
        if same_registry:
            upload = target.mount_blob(target_repository, blob.digest, source_repository)
            if upload is None:
                return "mounted", 0
        elif target.blob_exists(target_repository, blob.digest):
            return "present", 0
        else:
            upload = None
        return "copied", target.copy_blob(source, source_repository, target_repository, blob,
                                          upload)

    with ThreadPoolExecutor(max_workers=min(MOUNT_WORKERS, max(1, len(blobs)))) as pool:
        outcomes = list(pool.map(transfer, blobs))
    for outcome, sent in outcomes:
        result.bytes_copied += sent
        if outcome == "mounted":
            result.blobs_mounted += 1
        elif outcome == "present":
            result.blobs_present += 1
        else:
            result.blobs_copied += 1


def _unique_blobs(manifests: list[Manifest]) -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}
    for manifest in manifests:
        for blob in manifest.blobs:
            seen.setdefault(blob.digest, blob)
    return list(seen.values())
