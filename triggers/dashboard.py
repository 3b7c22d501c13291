"""`/api/dashboard`: the releases dashboard, as an HTML page (no JavaScript) or as JSON.

- `GET /api/dashboard?refresh=&limit=&format=`: services × environments (what runs, since
  when, the last good release), releases waiting at a gate (deadline, reminders, approval
  page links), failed deployments waiting for a person (`rollback.pauseForHuman`) and the
  most recent releases and operations.
- `GET /api/dashboard/releases/{releaseId}?refresh=&format=`: one release's page: its
  stages, its gate and its timeline.
- `GET /api/dashboard/services/{service}?refresh=&format=`: one service's pipeline, its
  environments left to right: what runs, what waits and for whom, the last failure.

JSON when `format=json` or when the client accepts JSON but not HTML. Pages refresh every
`refresh` seconds (default 30, 0 for never). A missing or invalid policy, or an unreachable
Durable store, is a message on the page; an unreachable ledger a 503 page. Reads only the
ledger, the policy's service and environment names and the custom status of waiting and
paused releases: no setting, secret or policy snapshot is shown (see `shared/dashboard`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import azure.durable_functions as df
import azure.functions as func

from blueprints import blueprint
from shared.app_context import app_ledger, app_policy
from shared.dashboard import (
    DEFAULT_REFRESH,
    Overview,
    ReleaseDetail,
    build_overview,
    build_release_detail,
    render_message,
    render_overview,
    render_release,
)
from shared.dashboard.pipeline import Pipeline, build_pipeline
from shared.dashboard.render import render_pipeline, style_source
from shared.ledger import EnvironmentState, LedgerError, ReleaseRecord
from shared.policy.errors import PolicyError
from shared.policy.model import Environment
from shared.releases.admission import NOT_FOUND, Refusal
from shared.text import one_line
from triggers.durable_adapter import decoded
from triggers.http import REFUSAL_STATUS
from triggers.releases import show
from triggers.responses import error_response, html_response, json_response

log = logging.getLogger(__name__)
bp = blueprint()

OVERVIEW_PARAMETERS = ("refresh", "limit", "format")
RELEASE_PARAMETERS = ("refresh", "format")
FORMATS = ("html", "json")
MIN_REFRESH, MAX_REFRESH = 5, 3600
DEFAULT_RECENT, MAX_RECENT = 25, 200
MAX_WAITING = 50   # waiting releases whose live status is read per page
PIPELINE_RELEASES = 100  # a service's recent releases its pipeline page reads
PAUSED_STEP = "paused"  # a failed deployment waiting for a person (`rollback.pauseForHuman`)
HEADERS = {
    "Cache-Control": "no-store",  # approval links carry tokens
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": f"default-src 'none'; style-src {style_source()}; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


class BadQuery(ValueError):
    """A query parameter we cannot use; the message is one line."""


class Query(NamedTuple):
    """A page's query: JSON or HTML, seconds between refreshes, how many recent rows."""

    as_json: bool
    refresh: int
    limit: int


@bp.route(route="dashboard", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def dashboard(req: func.HttpRequest,
                    client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The dashboard: what runs where, what waits for a decision, what happened lately."""
    async def view(query: Query) -> Overview:
        return await overview(client, query.refresh, query.limit)

    return await answering(req, OVERVIEW_PARAMETERS, view, render_overview)


@bp.route(route="dashboard/releases/{releaseId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def dashboard_release(req: func.HttpRequest,
                            client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One release's page: row, stages, gate and timeline."""
    async def view(query: Query) -> ReleaseDetail:
        shown = await show(client, req)
        return build_release_detail(shown, now=datetime.now(UTC), refresh=query.refresh)

    return await answering(req, RELEASE_PARAMETERS, view, render_release)


@bp.route(route="dashboard/services/{service}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def dashboard_pipeline(req: func.HttpRequest,
                             client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One service's environments left to right: what runs, what waits, the last failure."""
    async def view(query: Query) -> Pipeline:
        return await pipeline(client, req.route_params.get("service") or "", query.refresh)

    return await answering(req, RELEASE_PARAMETERS, view, render_pipeline)


async def answering(req: func.HttpRequest, allowed: tuple[str, ...],
                    view: Callable[[Query], Awaitable[Overview | ReleaseDetail | Pipeline]],
                    render: Callable[[Any], str]) -> func.HttpResponse:
    """The view as a page or JSON; a bad query, an unknown release or the ledger's outage
    as a one-line message instead."""
    try:
        query = read_query(req, allowed)
    except BadQuery as bad:
        return message_response(400, "Bad request", str(bad), req)
    try:
        shown = await view(query)
    except Refusal as refused:
        status = REFUSAL_STATUS[refused.kind]
        return message_response(status, "Not found" if status == 404 else "Refused",
                                refused.reason, req)
    except LedgerError as error:
        log.error("dashboard: %s", error)
        return message_response(503, "Ledger unavailable", f"ledger unavailable: {error}", req,
                                refresh=query.refresh)
    if query.as_json:  # approval links too: never cached
        return json_response(shown.to_dict(), 200, {"Cache-Control": "no-store"})
    return html_response(render(shown), headers=HEADERS)


# Reading ---------------------------------------------------------------------------------

async def overview(client: df.DurableOrchestrationClient, refresh: int,
                   limit: int) -> Overview:
    """Read the policy, the ledger and the live status of waiting releases; build the view."""
    messages: list[str] = []
    policy_services = await asyncio.to_thread(read_policy_services, messages)
    ledger = app_ledger()
    recent, waiting, running = await asyncio.gather(
        asyncio.to_thread(ledger.releases, limit=limit),
        asyncio.to_thread(ledger.releases, state="WaitingForApproval", limit=MAX_WAITING),
        asyncio.to_thread(ledger.releases, state="Running", limit=MAX_WAITING))
    paused = [row for row in running if row.step == PAUSED_STEP]
    names = list(policy_services or {})
    for row in [*waiting, *recent]:
        if row.service not in names:
            names.append(row.service)
    states = await asyncio.gather(*(asyncio.to_thread(ledger.environments, name)
                                    for name in names))
    environment_states = dict(zip(names, states, strict=True))
    known = await asyncio.to_thread(releases_running, ledger, environment_states,
                                    [*recent, *waiting])
    statuses = await live_statuses(client, [row.release_id for row in [*waiting, *paused]],
                                   messages)
    return build_overview(now=datetime.now(UTC), policy_services=policy_services,
                          environment_states=environment_states, recent=recent,
                          waiting=waiting, statuses=statuses, known=known, refresh=refresh,
                          messages=messages, paused=paused)


async def pipeline(client: df.DurableOrchestrationClient, service: str,
                   refresh: int) -> Pipeline:
    """Read one service's policy environments, ledger rows and live statuses."""
    messages: list[str] = []
    environments = await asyncio.to_thread(read_policy_environments, service, messages)
    ledger = app_ledger()
    states, releases = await asyncio.gather(
        asyncio.to_thread(ledger.environments, service),
        asyncio.to_thread(ledger.releases, service, limit=PIPELINE_RELEASES))
    if environments is None and not states and not releases:
        raise Refusal(NOT_FOUND, f"no service {one_line(service, 100)} in the policy or the"
                                 " ledger")
    known = await asyncio.to_thread(releases_running, ledger, {service: states}, releases)
    asking = [r.release_id for r in releases if r.state in ("WaitingForApproval", "Running")]
    statuses = await live_statuses(client, asking[:MAX_WAITING], messages)
    return build_pipeline(service, now=datetime.now(UTC), environments=environments,
                          states=states, releases=releases, statuses=statuses, known=known,
                          refresh=refresh, messages=messages)


def read_policy_environments(service: str, messages: list[str]) -> list[Environment] | None:
    """The service's environments in the policy; None when it has no such service (or the
    policy cannot be used: then a message says so)."""
    services = read_policy_services(messages)
    if services is None or service not in services:
        return None
    return list(app_policy().service(service).environments)


def read_policy_services(messages: list[str]) -> dict[str, list[str]] | None:
    """Service name → environment names; None (and a message) when the policy is unusable."""
    try:
        policy = app_policy()
    except PolicyError as error:
        log.warning("dashboard: the release policy is unusable: %s", error)
        messages.append("The release policy cannot be used, so services come from the ledger "
                        f"only and no new release starts: {policy_problem(error)}. Check it "
                        "with: python -m shared.policy check FILE")
        return None
    return {name: [environment.name for environment in service.environments]
            for name, service in policy.services.items()}


def policy_problem(error: PolicyError) -> str:
    """The first problem (file name, line, field, message) and how many more there are."""
    if not error.problems:
        return str(error)
    first = error.problems[0]
    where = Path(first.file).name + (f":{first.line}" if first.line else "")
    line = f"{where}: {first.field}: {first.message}" if first.field else \
        f"{where}: {first.message}"
    more = len(error.problems) - 1
    return line + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def releases_running(ledger: Any, environment_states: Mapping[str, list[EnvironmentState]],
                     rows: list[ReleaseRecord]) -> dict[str, ReleaseRecord]:
    """The releases that run or last were good somewhere, by id (for their versions)."""
    known = {row.release_id: row for row in rows}
    for service, states in environment_states.items():
        for state in states:
            for deployment in (state.current, state.last_good):
                if deployment is not None and deployment.release_id not in known:
                    found = ledger.get_release(deployment.release_id, service=service)
                    if found is not None:
                        known[found.release_id] = found
    return known


async def live_statuses(client: df.DurableOrchestrationClient, instance_ids: list[str],
                        messages: list[str]) -> dict[str, Any]:
    """Custom status by instance id; a message instead when Durable cannot be read."""
    async def one(instance_id: str) -> Any:
        status = await client.get_status(instance_id)
        return decoded(status.custom_status) if status else None

    results = await asyncio.gather(*(one(i) for i in instance_ids), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        log.warning("dashboard: Durable status unavailable: %s", failed[0])
        messages.append("The live status of waiting releases is unavailable right now "
                        "(the Durable task hub did not answer); deadlines and approval "
                        "links are missing until it does.")
    return {i: r for i, r in zip(instance_ids, results, strict=True)
            if not isinstance(r, BaseException)}


# Requests and responses ------------------------------------------------------------------

def read_query(req: func.HttpRequest, allowed: tuple[str, ...]) -> Query:
    """A page's query; BadQuery names the first thing wrong."""
    as_json = wants_json(req)
    refresh = parse_refresh(req.params)
    limit = parse_limit(req.params) if "limit" in allowed else DEFAULT_RECENT
    check_parameters(req.params, allowed)
    return Query(as_json, refresh, limit)


def wants_json(req: func.HttpRequest) -> bool:
    """`format=json`, or an Accept header that names JSON and not HTML."""
    chosen = (req.params.get("format") or "").strip().lower()
    if chosen:
        if chosen not in FORMATS:
            raise BadQuery(f"format must be one of {', '.join(FORMATS)}, not {chosen[:20]!r}")
        return chosen == "json"
    accept = (req.headers.get("Accept") or "").lower()
    return "application/json" in accept and "text/html" not in accept


def parse_refresh(params: Mapping[str, str]) -> int:
    """Seconds between refreshes: 0 (never) or from 5 to 3600; 30 when not given."""
    value = (params.get("refresh") or "").strip()
    if not value:
        return DEFAULT_REFRESH
    if not value.isdigit() or not (int(value) == 0 or MIN_REFRESH <= int(value) <= MAX_REFRESH):
        raise BadQuery(f"refresh must be 0 (never) or whole seconds from {MIN_REFRESH} to "
                       f"{MAX_REFRESH}, not {value[:20]!r}")
    return int(value)


def parse_limit(params: Mapping[str, str]) -> int:
    value = (params.get("limit") or "").strip()
    if not value:
        return DEFAULT_RECENT
    if not value.isdigit() or not 1 <= int(value) <= MAX_RECENT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_RECENT}, "
                       f"not {value[:20]!r}")
    return int(value)


def check_parameters(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise BadQuery(f"unknown query parameter {unknown[0][:40]!r}; expected "
                       f"{', '.join(allowed)}")


def message_response(status_code: int, title: str, message: str, req: func.HttpRequest, *,
                     refresh: int = 0) -> func.HttpResponse:
    """A refusal or an outage as `{"error"}` JSON or as a small HTML page, on one line."""
    line = one_line(message)
    try:
        as_json = wants_json(req)
    except BadQuery:
        as_json = False
    if as_json:
        return error_response(status_code, line)
    return html_response(render_message(title, line, refresh=refresh), status_code, HEADERS)
