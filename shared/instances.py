"""An orchestration instance as the domain sees it: Durable's status with its JSON decoded.

Plain data: `triggers/durable_adapter.py` builds it from the Durable client; the desks and the
release view in `shared/` read it. Knows nothing of the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Instance:
    """An orchestration instance: its name, runtime status (`Running`, …), decoded values and
    times."""

    instance_id: str
    name: str | None
    runtime: str | None
    input: Any
    output: Any
    custom_status: Any
    created: datetime | None
    updated: datetime | None
