"""The one reader of JSON that comes from outside: request bodies and the sign-in header.

Bounded in size and nesting depth, UTF-8 only, no `NaN`/`Infinity`; every failure is a
`JsonInputError` whose message is one line. Does not check the document's shape.
"""

from __future__ import annotations

import json
from typing import Any, Final

MAX_DEPTH: Final = 32


class JsonInputError(ValueError):
    """The input is not JSON we read; the message says why on one line."""


def read_json(data: bytes | str, *, limit: int, what: str = "request body",
              max_depth: int = MAX_DEPTH) -> Any:
    """The parsed document of `data`, at most `limit` bytes and `max_depth` levels deep."""
    if len(data) > limit:
        raise JsonInputError(f"{what} is larger than {limit} bytes")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise JsonInputError(f"{what} is not UTF-8 text") from None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # the C decoder's own guard against deep nesting
        raise JsonInputError(f"{what} is nested deeper than {max_depth} levels") from None
    except ValueError as bad:
        reason = (str(bad).splitlines() or ["invalid"])[0][:160]
        raise JsonInputError(f"{what} is not valid JSON: {reason}") from None
    if _deeper_than(document, max_depth):
        raise JsonInputError(f"{what} is nested deeper than {max_depth} levels")
    return document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _deeper_than(document: Any, max_depth: int) -> bool:
    """Whether arrays and objects nest more than `max_depth` levels (iteratively)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, dict | list))
    return False
