"""Deterministic trace and span ids of a release, so a span emitted after the fact (or again,
after a replay) always lands at the same place in the same trace. Pure; no I/O."""

from __future__ import annotations

import hashlib

RELEASE = "release"
ENVIRONMENT = "environment"


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def trace_id(release_id: str) -> int:
    """A release's trace id: the first 16 bytes of sha256("release:" + release id)."""
    value = int.from_bytes(hashlib.sha256(f"release:{release_id}".encode()).digest()[:16], "big")
    return value or 1  # an all-zero id is invalid (astronomically unlikely, still defined)


def span_id(release_id: str, environment: str | None, step: str, ordinal: int = 0) -> int:
    """A span's id: the first 8 bytes of sha256 over (release id, environment, step, ordinal)."""
    value = int.from_bytes(_digest(release_id, environment or "", step, str(ordinal))[:8], "big")
    return value or 1


def release_span_id(release_id: str) -> int:
    """The id of the release's root span."""
    return span_id(release_id, None, RELEASE)


def environment_span_id(release_id: str, environment: str) -> int:
    """The id of an environment's span, the parent of that environment's steps (also as the
    `deploy_environment` sub-orchestration computes it from its job)."""
    return span_id(release_id, environment, ENVIRONMENT)


def hex_trace_id(release_id: str) -> str:
    """The trace id as Application Insights shows it (`operation_Id`): 32 hex digits."""
    return f"{trace_id(release_id):032x}"
