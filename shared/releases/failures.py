"""Which activity failures are worth retrying, and how long to wait between attempts (pure).

An activity's failure reaches the orchestrator as text. The activity boundary marks it
permanent or transient from the error's class (shared/failure_kinds.py): errors another
attempt cannot fix (a refused tag, a missing image or deployment, no permission, a bad
request, a missing secret) end the step at once; everything else (throttling, 5xx,
connection resets, conflicts with a concurrent change) is retried with backoff.

A text without a marker was written before the marker existed (a history recorded by
earlier code, replayed now) or by the host itself: it is read the old way, by the
exception type it names (`… failed: TagConflict: registry …`), so it replays as it ran.
"""

from __future__ import annotations

import re
from datetime import timedelta

from shared.failure_kinds import kind_of, unmarked
from shared.text import one_line

ATTEMPTS = 3
REASON_LIMIT = 500  # a reason in the ledger, the custom status, a Teams card
FIRST_DELAY = timedelta(seconds=5)
# The old way, for unmarked texts only: never extend it, mark the error's class instead.
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
    """Whether the failure text says another attempt cannot fix it: by its marker, else
    (an unmarked, older text) by the exception type it names."""
    kind = kind_of(failure)
    if kind is not None:
        return kind == "permanent"
    return any(name in PERMANENT for name in _TYPE.findall(failure))


def retry_delay(attempt: int) -> timedelta:
    """Backoff before attempt `attempt + 1`: 5 s, 10 s, 20 s, …"""
    return FIRST_DELAY * 2.0 ** (attempt - 1)


def said(failure: BaseException) -> str:
    """What a failure says, as the operator reads it: on one line, without its kind marker."""
    return one_line(unmarked(str(failure)), REASON_LIMIT)
