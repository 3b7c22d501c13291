"""What becomes of a registry event: start a release, or ignore it and say why.

Pure rules over a `RegistryEvent` and the release policy, and over what the registry
said of the image (`image_verdict`). Duplicates are not decided here: the ledger's digest
claim is what makes a start happen once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.registry.manifests import IMAGE_TYPES, INDEX_TYPES
from shared.registry.references import DIGEST, TAG

from .payloads import RegistryEvent

if TYPE_CHECKING:  # the registry seam is not needed to judge its answer
    from .image_check import ImageFacts

Outcome = Literal["start", "ignored", "rejected"]
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES


@dataclass(frozen=True)
class Decision:
    """The outcome for one event, with a reason a person can read."""

    outcome: Outcome
    reason: str
    service: str | None = None
    release_id: str | None = None


def supersedes(new_tag: str, old_tag: str, version_key: Callable[[str], Any]) -> bool:
    """Whether a push of `new_tag` supersedes a release of `old_tag` of the same service.

    A higher version does, and so does the same version pushed again (the tag now names
    another image); without a SemVer version on either side the newer push wins."""
    new, old = version_key(new_tag), version_key(old_tag)
    return new is None or old is None or old <= new


def overwritten(releases: Iterable[Any], tag: str, digest: str) -> dict[str, str] | None:
    """The newest earlier release of this very tag at another digest: the tag was pushed
    again as another image (`releaseId`, `digest`, `state`); None when it was not."""
    for release in releases:  # newest first
        if release.version == tag and release.digest != digest:
            return {"releaseId": release.release_id, "digest": release.digest,
                    "state": release.state}
    return None


def release_id(service: str, digest: str) -> str:
    """Stable Durable instance id: one release per service and image digest."""
    return f"{service}-{digest.removeprefix('sha256:')[:16]}"


def decide(event: RegistryEvent, policy: Any) -> Decision:
    """Start a release for a tagged image push the policy wants; ignore everything else."""
    if event.action == "ping":
        return Decision("ignored", "ping")
    if event.action.startswith("unhandled:"):
        return Decision("ignored", f"event type {event.action.split(':', 1)[1]} is not acted on")
    if event.action != "push":
        return Decision("ignored", f"action {event.action!r} is not acted on")
    if not event.tag:
        return Decision("ignored", "push without a tag (a blob, or a manifest pushed by digest)")
    if event.media_type and event.media_type not in MANIFEST_TYPES:
        return Decision("ignored", f"not an image manifest ({event.media_type})")
    if not event.digest or not DIGEST.match(event.digest):
        return Decision("rejected", f"push of {event.repository}:{event.tag} has no valid"
                                    " sha256 digest")
    if not TAG.match(event.tag):
        return Decision("rejected", f"push of {event.repository} has an invalid tag"
                                    f" {event.tag[:130]!r}")
    registry = event.registry or None
    if policy.is_promotion_target(event.repository, registry):
        return Decision("ignored", f"{event.repository} is a promotion target (our own retag)")
    service = policy.service_for_repository(event.repository, registry)
    if service is None:
        return Decision("ignored", f"no service in the policy for repository"
                                   f" {event.repository}")
    accepted, why = service.accepts_tag(event.tag)
    if not accepted:
        return Decision("ignored", why, service.name)
    return Decision("start", f"{service.name} {event.tag}", service.name,
                    release_id(service.name, event.digest))


def image_verdict(facts: ImageFacts, where: str, digest: str) -> Decision | None:
    """None when the registry holds a runnable image at `digest` in `where` (host/repo);
    else the outcome: `rejected` when it holds no manifest there, `ignored` when what it
    holds is no container image (a Helm chart, another artifact)."""
    if not facts.found:
        detail = f": {facts.problem}" if facts.problem else ""
        return Decision("rejected", f"digest {digest} is not in {where}{detail}")
    if facts.problem:
        return Decision("ignored", f"{where}@{digest} is {facts.problem}, not an image a"
                                   " cluster can run")
    return None
