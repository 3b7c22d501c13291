"""Durations written as `30s`, `15m`, `24h`, `3d` (or combined, `1h30m`). Pure functions."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
HINT = "use 30m, 24h, 3d"


def parse_duration(value: object) -> timedelta:
    """A positive duration from text such as `72h`; ValueError naming the value otherwise."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str) and value and (match := _DURATION.fullmatch(value.strip())) \
            and any(match.groups()):
        seconds = sum(int(match[unit] or 0) * size for unit, size in _UNITS)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: a number needs a unit ({HINT})")
    else:
        raise ValueError(f"invalid duration {value!r} ({HINT})")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """The shortest text `parse_duration` reads back as `duration` (`1d12h`, `90s` → `1m30s`)."""
    remaining = int(duration.total_seconds())
    parts = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
