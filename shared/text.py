"""`one_line`: any text (an error, a reason someone typed) as one line, cut to a length."""

from __future__ import annotations


def one_line(text: object, limit: int | None = None, *, cut: str = "") -> str:
    """`text` with its whitespace runs as single spaces, at most `limit` characters long
    (`cut`, such as "…", ends a text that was cut and counts towards the limit)."""
    line = " ".join(str(text).split())
    if limit is None or len(line) <= limit:
        return line
    return line[:limit - len(cut)] + cut
