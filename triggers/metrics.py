"""`/api/metrics/delivery` and `/api/dashboard/delivery`: the four delivery figures (DORA).

- `GET /api/metrics/delivery?service=&days=`: JSON, per service of the policy and for all
  of them (or for the one `service`), over the last `days` days (1-365, default 30).
- `GET /api/dashboard/delivery?service=&days=&refresh=&format=`: the same as a page with a
  small chart per figure (inline SVG, no JavaScript), linked from the dashboard.

A bad query (an unknown parameter, days not 1-365, a service the policy does not name) is
a 400 with a one-line reason and nothing is read from the ledger. The rules are in
shared/metrics/delivery.py; this module parses and answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import azure.functions as func

from blueprints import blueprint
from shared.app_context import app_ledger, app_policy
from shared.dashboard.delivery import build_delivery_page, render_delivery
from shared.ledger import LedgerError
from shared.metrics.delivery import DEFAULT_DAYS, MAX_DAYS, MIN_DAYS, DeliveryReport
from shared.metrics.from_ledger import read_delivery
from shared.policy.errors import PolicyError
from shared.releases.admission import INVALID, Refusal
from shared.text import one_line
from triggers import dashboard
from triggers.http import NO_STORE, Refused, answering
from triggers.identifiers import NAME
from triggers.responses import html_response, json_response

log = logging.getLogger(__name__)
bp = blueprint()

API_PARAMETERS = ("service", "days")
PAGE_PARAMETERS = ("service", "days", "refresh", "format")


@bp.route(route="metrics/delivery", methods=["GET"])
async def delivery_metrics(req: func.HttpRequest) -> func.HttpResponse:
    """The four figures as JSON, per service and for all."""
    async def answer() -> func.HttpResponse:
        extra = sorted(set(req.params) - set(API_PARAMETERS))
        if extra:
            raise Refused(400, f"unknown query parameter {one_line(extra[0], 40)!r}; "
                               f"expected {', '.join(API_PARAMETERS)}")
        try:
            service, days = delivery_query(req.params)
            report = await delivery(service, days)
        except Refusal as refused:
            raise Refused(400, refused.reason) from None
        return json_response(report.to_dict(), 200, NO_STORE)

    return await answering(answer)


@bp.route(route="dashboard/delivery", methods=["GET"])
async def delivery_page(req: func.HttpRequest) -> func.HttpResponse:
    """The four figures as a page with a chart each."""
    try:
        query = dashboard.read_query(req, PAGE_PARAMETERS)
    except dashboard.BadQuery as bad:
        return dashboard.message_response(400, "Bad request", str(bad), req)
    try:
        service, days = delivery_query(req.params)
        page = build_delivery_page(await delivery(service, days), refresh=query.refresh)
    except Refusal as refused:
        return dashboard.message_response(400, "Bad request", refused.reason, req)
    except LedgerError as error:
        log.error("delivery page: %s", error)
        return dashboard.message_response(503, "Ledger unavailable",
                                          f"ledger unavailable: {error}", req,
                                          refresh=query.refresh)
    except PolicyError:
        log.exception("delivery page: the release policy is invalid")
        return dashboard.message_response(503, "Policy unusable",
                                          "release policy is invalid; see the app log", req)
    if query.as_json:
        return json_response(page.to_dict(), 200, NO_STORE)
    return html_response(render_delivery(page), headers=dashboard.HEADERS)


def delivery_query(params: Mapping[str, str]) -> tuple[str | None, int]:
    """(service or None, days) of a query; Refusal(INVALID) names what is wrong."""
    service = (params.get("service") or "").strip() or None
    if service is not None and (len(service) > 63 or not NAME.fullmatch(service)):
        raise Refusal(INVALID, f"service {one_line(service, 80)!r} is not a service name")
    text = (params.get("days") or "").strip()
    if text and not (text.isdigit() and MIN_DAYS <= int(text) <= MAX_DAYS):
        raise Refusal(INVALID, f"days must be a whole number from {MIN_DAYS} to {MAX_DAYS}, "
                               f"not {one_line(text, 20)!r}")
    return service, int(text) if text else DEFAULT_DAYS


async def delivery(service: str | None, days: int) -> DeliveryReport:
    """Read the window's figures; a service the policy does not name is refused first."""
    production = await asyncio.to_thread(production_environments)
    if service is not None and service not in production:
        raise Refusal(INVALID, f"unknown service {service!r}; the policy names "
                               f"{', '.join(sorted(production)) or 'no service'}")
    return await asyncio.to_thread(read_delivery, app_ledger(), production, days,
                                   service=service)


def production_environments() -> dict[str, str]:
    """Service → its production environment (the last of its policy)."""
    return {name: service.production.name for name, service in app_policy().services.items()}
