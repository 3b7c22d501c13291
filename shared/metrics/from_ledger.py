"""The delivery figures of a window, read from the ledger: only that window's rows.

Reads the release rows created or updated in the window (`Ledger.releases_since`, a
server-side filter, every page), then for the changes that became healthy in production
there, when their pushes were received: the events that started them, one query per service
from shortly before the oldest of them was created; any not found that way through its
digest claim (point reads, a few at a time). Does not decide what counts: `delivery` does.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from shared.ledger.store import Ledger

from .delivery import (
    DeliveryReport,
    ProductionDeployment,
    check_days,
    delivery_report,
    needing_push_times,
)

LOOKUPS_IN_FLIGHT = 8
# How long before its release's first ledger write a push may have been received (the
# registry check, a slow start, clocks of two instances): the events query reaches back so far.
PUSH_BEFORE_START = timedelta(hours=1)


def read_delivery(ledger: Ledger, production: Mapping[str, str], days: int, *,
                  service: str | None = None, now: datetime | None = None) -> DeliveryReport:
    """The figures of the last `days` days up to `now`, for `service` or every service of
    `production` (service → its production environment)."""
    until = now or datetime.now(UTC)
    since = until - timedelta(days=check_days(days))
    rows = ledger.releases_since(since, service)
    chosen = production if service is None else {service: production[service]}
    wanted = needing_push_times(rows, chosen, since, until)
    return delivery_report(rows, chosen, push_times(ledger, wanted), since=since,
                           until=until, service=service)


def push_times(ledger: Ledger,
               deployments: list[ProductionDeployment]) -> dict[str, datetime]:
    """Release id → when the push that started it was received (its event row's
    `ReceivedAt`, else its digest claim's time); releases with neither are left out.

    One query per service reads the events received since shortly before the oldest of
    its releases was created (a push is received before its release starts); a release
    whose event is not among them is looked up through its digest claim."""
    found: dict[str, datetime] = {}
    by_service: dict[str, list[ProductionDeployment]] = {}
    for deployment in deployments:
        by_service.setdefault(deployment.service, []).append(deployment)
    for service, group in by_service.items():
        wanted = {d.release_id for d in group}
        earliest = min(d.created_at for d in group) - PUSH_BEFORE_START
        for event in ledger.events(service, since=earliest, limit=sys.maxsize):
            if event.outcome == "started" and event.release_id in wanted:
                found[event.release_id] = event.received_at
    missing = [d for d in deployments if d.release_id not in found]
    if missing:
        with ThreadPoolExecutor(min(LOOKUPS_IN_FLIGHT, len(missing))) as pool:
            looked_up = pool.map(lambda deployment: push_time(ledger, deployment), missing)
            found.update({d.release_id: at for d, at in zip(missing, looked_up, strict=True)
                          if at is not None})
    return found


def push_time(ledger: Ledger, deployment: ProductionDeployment) -> datetime | None:
    """One release's push receipt through its digest claim (two point reads)."""
    claim = ledger.digest_claim(deployment.service, deployment.digest)
    if claim is None or claim.release_id != deployment.release_id:
        return None
    event = ledger.get_event(claim.event_id, service=deployment.service) \
        if claim.event_id else None
    return event.received_at if event is not None else claim.claimed_at
