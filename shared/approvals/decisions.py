"""The decision event a gate waits for: what the approval page raises, the orchestration checks.

Pure. The event carries who decided (the name to show and every identifier they answer to),
their groups, the link's nonce (single use), the decision, a comment and when. The gate's
event name comes from the release's custom status (`waitingFor.event`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

DECISIONS = ("approve", "reject")


def decision_data(*, decision: str, approver: str, identities: Iterable[str], nonce: str,
                  at: datetime, event_id: str, via: str, groups: Iterable[str] = (),
                  comment: str | None = None) -> dict[str, Any]:
    """The event's JSON data; identities are case-folded, the first is the use's identity."""
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    names = [i.strip().casefold() for i in identities if isinstance(i, str) and i.strip()]
    if not approver.strip() or not names:
        raise ValueError("a decision needs the approver's name and at least one identity")
    return {"eventId": event_id, "nonce": nonce, "decision": decision,
            "approver": approver.strip(), "identities": list(dict.fromkeys(names)),
            "groups": sorted({g for g in groups if isinstance(g, str) and g}),
            "comment": (comment or "").strip() or None, "at": at.isoformat(), "via": via}
