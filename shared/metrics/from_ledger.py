"""The delivery figures of a window, read from the ledger: only that window's rows.

Reads the release rows created or updated in the window (`Ledger.releases_since`, a
server-side filter, every page), then for each change that became healthy in production
there, when its push was received: the digest claim names the event that started it, the
event row keeps its receipt (point reads, a few at a time). Does not decide what counts:
`delivery` does.
"""

from __future__ import annotations

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
    `ReceivedAt`, else its digest claim's time); releases with neither are left out."""
    if not deployments:
        return {}
    with ThreadPoolExecutor(min(LOOKUPS_IN_FLIGHT, len(deployments))) as pool:
        found = pool.map(lambda deployment: push_time(ledger, deployment), deployments)
        return {d.release_id: at for d, at in zip(deployments, found, strict=True)
                if at is not None}


def push_time(ledger: Ledger, deployment: ProductionDeployment) -> datetime | None:
    claim = ledger.digest_claim(deployment.service, deployment.digest)
    if claim is None or claim.release_id != deployment.release_id:
        return None
    event = ledger.get_event(claim.event_id, service=deployment.service) \
        if claim.event_id else None
    return event.received_at if event is not None else claim.claimed_at
