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


def span_id(release_id: str, environment: str | None, step: str, ordinal: int = 0,
            attempt: int = 0) -> int:
    """A span's id: the first 8 bytes of sha256 over (release id, environment, step, ordinal);
    a retried run of the release (`attempt` 1, 2, …: it keeps the release id and its trace)
    adds its number, so its spans do not take the first run's ids."""
    parts = (release_id, environment or "", step, str(ordinal))
    value = int.from_bytes(_digest(*parts, *([f"retry {attempt}"] if attempt else []))[:8],
                           "big")
    return value or 1


def release_span_id(release_id: str, attempt: int = 0) -> int:
    """The id of the release's root span (of its run `attempt`)."""
    return span_id(release_id, None, RELEASE, 0, attempt)


def environment_span_id(release_id: str, environment: str, attempt: int = 0) -> int:
    """The id of an environment's span, the parent of that environment's steps (also as the
    `deploy_environment` sub-orchestration computes it from its job)."""
    return span_id(release_id, environment, ENVIRONMENT, 0, attempt)


def hex_trace_id(release_id: str) -> str:
    """The trace id as Application Insights shows it (`operation_Id`): 32 hex digits."""
    return f"{trace_id(release_id):032x}"
