"""Permanent or worth a retry: a property of the error, and the marker that carries it.

An error another attempt cannot fix (a refused tag, a missing image, no permission, a bad
request) inherits `Permanent`; every other error is worth a retry. The orchestrator sees an
activity's failure only as text, so the activity boundary puts a marker in front of the
error's message (`mark`); `kind_of` reads it back. Does not decide how often or when to
retry: see shared/releases/failures.py.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

Kind = Literal["permanent", "transient"]
PERMANENT_MARK = "[permanent] "
TRANSIENT_MARK = "[transient] "
# The marker opens the message, right after the host's `TypeName: ` (a KeyError quotes it).
_MARK = re.compile(r"""(?:^|: )["']?\[(permanent|transient)\] """)
# The request itself is wrong: another attempt sends the same request.
_REQUEST_ERRORS = (ValueError, KeyError, TypeError)


class Permanent:
    """Mixin for errors another attempt cannot fix; a subclass may say `retryable = True`."""

    retryable: ClassVar[bool] = False


def is_permanent_error(error: BaseException) -> bool:
    """Whether another attempt cannot fix `error`: its class says so, or it is a bare
    ValueError, KeyError or TypeError (the request itself)."""
    retryable = getattr(type(error), "retryable", None)
    if isinstance(retryable, bool):
        return not retryable
    return type(error) in _REQUEST_ERRORS


def mark(error: BaseException) -> None:
    """Put the error's kind in front of its message, once (the type stays the same).

    An error whose text does not come from its arguments (an OSError's `[Errno n] …`) is
    left as it is: a library's, never one of ours; its text is read the old way."""
    if kind_of(str(error)) is not None:
        return
    marker = PERMANENT_MARK if is_permanent_error(error) else TRANSIENT_MARK
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    args, error.args = error.args, (f"{marker}{message}",)
    if kind_of(str(error)) is None:
        error.args = args


def kind_of(failure: str) -> Kind | None:
    """The kind a failure's text is marked with; None for a text without a marker
    (written before the marker existed, or by the host itself)."""
    found = _MARK.search(failure)
    if found is None:
        return None
    return "permanent" if found.group(1) == "permanent" else "transient"


def unmarked(failure: str) -> str:
    """The failure's text without its marker, as an operator reads it."""
    found = _MARK.search(failure)
    if found is None:
        return failure
    start = found.end() - len(PERMANENT_MARK if found.group(1) == "permanent" else TRANSIENT_MARK)
    return failure[:start] + failure[found.end():]
