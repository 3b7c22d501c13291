"""Which activity failures are worth retrying (pure).

An activity's failure reaches the orchestrator as text that names the exception
type (`… failed: TagConflict: registry …`). Errors that another attempt cannot
fix — a refused tag, a missing image or deployment, no permission, a bad request,
a missing secret — end the step at once; everything else (throttling, 5xx,
connection resets, conflicts with a concurrent change) is retried with backoff.
"""

from __future__ import annotations

import re
from datetime import timedelta

ATTEMPTS = 3
FIRST_DELAY = timedelta(seconds=5)
PERMANENT = frozenset({
    # registry
    "TagConflict", "ImageNotFound", "DigestMismatch", "InvalidReference",
    "RegistryRequestError", "UnsupportedManifest",
    # cluster
    "InvalidTarget", "ClusterForbidden", "ClusterAuthError", "DeploymentNotFound",
    # secrets
    "SecretNotFound", "SecretAccessDenied", "InvalidSecretSpec", "InvalidSecretName",
    # approval settings
    "ApprovalConfigError",
    # the request itself
    "ValueError", "KeyError", "TypeError",
})
_TYPE = re.compile(r"\b([A-Z][A-Za-z]*(?:Error|Exception|Conflict|NotFound|Forbidden|Denied|"
                   r"Mismatch|Reference|Target|Spec|Name|Manifest)):")


def is_permanent(failure: str) -> bool:
    """Whether the failure text names an error another attempt cannot fix."""
    return any(name in PERMANENT for name in _TYPE.findall(failure))


def retry_delay(attempt: int) -> timedelta:
    """Backoff before attempt `attempt + 1`: 5 s, 10 s, 20 s, …"""
    return FIRST_DELAY * (2 ** (attempt - 1))
