"""Reading moments from JSON-ish values: ISO 8601 text or datetimes, as aware UTC datetimes.

One forgiving parser for views and HTTP answers that show times from ledger rows and
Durable custom statuses, and `iso_z` for the times queries take. Does not format times for
people (see the views) and does not validate: anything it cannot read is None.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def as_utc(value: Any) -> datetime | None:
    """An ISO text (`Z` allowed) or datetime as an aware UTC datetime; None for anything else.

    Naive values are taken as UTC.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_z(moment: datetime) -> str:
    """`2026-12-06T16:30:00Z`: RFC 3339 UTC to the second, as queries take a time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
