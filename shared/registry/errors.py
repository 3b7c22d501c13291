"""Typed registry errors whose messages name registry, repository and reference.

Messages never carry credentials or tokens: only the registry host, the
repository, the tag or digest, and what went wrong.
"""

from __future__ import annotations

from shared.failure_kinds import Permanent


class RegistryError(Exception):
    """A registry operation failed; `str()` says where and why."""

    def __init__(self, registry: str, repository: str, reference: str, reason: str,
                 status: int | None = None) -> None:
        self.registry = registry
        self.repository = repository
        self.reference = reference
        self.reason = reason
        self.status = status  # the HTTP status the registry answered, when it answered
        where = f"{repository}:{reference}" if reference and not reference.startswith("sha256:") \
            else f"{repository}@{reference}" if reference else repository
        super().__init__(f"registry {registry}: {where}: {reason}")


class ImageNotFound(Permanent, RegistryError):
    """The repository, tag, manifest or blob does not exist."""


class TagConflict(Permanent, RegistryError):
    """The target tag already points to another digest."""


class DigestMismatch(Permanent, RegistryError):
    """What the registry returned or stored is not the digest that was asked for."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept failing after retries."""


class RegistryRequestError(Permanent, RegistryError):
    """The registry refused a request (a permanent error, not retried)."""


class UnsupportedManifestError(RegistryRequestError):
    """The registry served something this product does not read as a manifest."""


class InvalidReference(Permanent, ValueError):
    """A repository name, tag or digest that the OCI distribution spec does not allow."""
