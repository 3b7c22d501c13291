"""`/api/releases/{releaseId}/approvals/{environment}`: the approval page and its decisions.

- `GET` (and `HEAD`) `?token=…[&decision=approve|reject]`: the decision page. No side
  effects: link previews, mail scanners and Safe Links fetch every URL they see. The only
  state it sets is the anti-forgery cookie.
- `POST` the page's form (`decision`, `comment`, `csrf`) → the result page; or, for scripts,
  `Content-Type: application/json` `{"decision", "comment"?}` → JSON.

Both check the link, the gate and the person at the approval desk
(shared/approvals/desk.py), which raises the decision event only when every check passes
and reads the release's verdict back. Nothing is raised when a check fails: a 4xx with one
line says why. This module reads requests (body size, JSON or the page's form with its
anti-forgery check) and writes the answers; it does not count approvals or end the gate:
the orchestration does (orchestrations/release.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from blueprints import blueprint
from shared.app_context import app_ledger
from shared.approvals import forms, keys
from shared.approvals.desk import DECISIONS, Desk, OpenGate, app_desk
from shared.approvals.page import (
    COMMENT_LIMIT,
    HTML_TYPE,
    SECURITY_HEADERS,
    Problem,
    Verdict,
    render_decision,
    render_problem,
    render_result,
)
from shared.json_input import JsonInputError, read_json
from shared.ledger.changes import ChangesBook
from shared.ledger.evidence import EvidenceBook
from triggers.durable_adapter import ClientInstances
from triggers.identifiers import INSTANCE_ID, NAME
from triggers.responses import html_response, json_response

bp = blueprint()

ROUTE = "releases/{releaseId}/approvals/{environment}"
MAX_BODY = 16 * 1024
ANSWER_WITHIN = 10.0      # seconds a decision request waits for the release to take it
NO_STORE = {"Cache-Control": "no-store"}


# The routes ------------------------------------------------------------------------------

@bp.route(route=ROUTE, methods=["GET", "HEAD"])
@bp.durable_client_input(client_name="client")
async def approval_page(req: func.HttpRequest,
                        client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The decision page of one gate for the person the link (or their sign-in) names."""
    try:
        desk = approval_desk(client)
        gate = await open_gate(desk, req)
        csrf, set_cookie = forms.form_value(forms.header(req.headers, "cookie"), secure(req))
        intent = req.params.get("decision")
        view = await desk.view(gate, intent if intent in DECISIONS else None)
        headers = {"Set-Cookie": set_cookie} if set_cookie else {}
        return html(200, render_decision(view, csrf=csrf, now=desk.now()), headers)
    except Problem as problem:
        return html(problem.status, render_problem(problem))


@bp.route(route=ROUTE, methods=["POST"])
@bp.durable_client_input(client_name="client")
async def approval_decision(req: func.HttpRequest,
                            client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Take a decision from the page's form (HTML answer) or a script (JSON answer)."""
    as_json = forms.media_type(forms.header(req.headers, "content-type")) == forms.JSON_TYPE
    try:
        decision, comment = read_decision(req, as_json)
        desk = approval_desk(client)
        gate = await open_gate(desk, req, decision)
        verdict = await desk.decide(gate, decision, comment, "api" if as_json else "page",
                                    within=ANSWER_WITHIN)
    except Problem as problem:
        if as_json:
            return json_answer(problem.status, {"error": problem.message})
        return html(problem.status, render_problem(problem))
    status = 202 if verdict.outcome == "Pending" else 200 if verdict.counted else 409
    if as_json:
        return json_answer(status, verdict_body(gate, verdict))
    return html(status, render_result(gate.release_id, gate.environment, verdict,
                                      status_path=f"/api/releases/{quote(gate.release_id)}"))


def approval_desk(client: df.DurableOrchestrationClient) -> Desk:
    """The desk over the app's Durable client, approval settings, book, ledger and the
    ledger's analysis rounds and changes book."""
    return app_desk(ClientInstances(client), app_ledger,
                    lambda: EvidenceBook.beside(app_ledger()).rounds,
                    lambda: ChangesBook.beside(app_ledger()).find)


async def open_gate(desk: Desk, req: func.HttpRequest, decision: str | None = None) -> OpenGate:
    """The gate the route names, opened with the request's link and sign-in headers."""
    release_id = req.route_params.get("releaseId", "")
    environment = req.route_params.get("environment", "")
    if not INSTANCE_ID.fullmatch(release_id) or not NAME.fullmatch(environment):
        raise Problem("not-found", "no such release or environment")
    return await desk.open(release_id, environment, req.params.get("token") or "",
                           req.headers, decision)


# Reading the request ---------------------------------------------------------------------

def read_decision(req: func.HttpRequest, as_json: bool) -> tuple[str, str | None]:
    """(decision, comment) of a JSON or form body; a form must pass the anti-forgery check."""
    body = req.get_body() or b""
    if len(body) > MAX_BODY:
        raise Problem("bad-request", f"request body is larger than {MAX_BODY} bytes")
    if as_json:
        try:
            data = read_json(body, limit=MAX_BODY)
        except JsonInputError as bad:
            raise Problem("bad-request", str(bad)) from None
        if not isinstance(data, dict) or set(data) - {"decision", "comment"}:
            raise Problem("bad-request", 'body must be {"decision": "approve" | "reject",'
                                         ' "comment": "…"}')
    else:
        if forms.media_type(forms.header(req.headers, "content-type")) != forms.FORM_TYPE:
            raise Problem("unsupported", "post the approval page's form, or send JSON with"
                                         " Content-Type: application/json")
        try:
            data = forms.parse_form(body)
            forms.check_form(cookie_header=forms.header(req.headers, "cookie"),
                             submitted=data.get(forms.FIELD), secure=secure(req),
                             origin=forms.header(req.headers, "origin"),
                             referer=forms.header(req.headers, "referer"),
                             allowed=[req.url, _base_url()])
        except forms.FormError as error:
            raise Problem("bad-request", str(error)) from None
        except forms.ForgeryError as error:
            raise Problem("forgery", str(error)) from None
    decision, comment = data.get("decision"), data.get("comment")
    if decision not in DECISIONS:
        raise Problem("bad-request", "decision must be approve or reject")
    if comment is not None and not isinstance(comment, str):
        raise Problem("bad-request", "comment must be text")
    comment = (comment or "").strip()
    if len(comment) > COMMENT_LIMIT:
        raise Problem("bad-request", f"comment is longer than {COMMENT_LIMIT} characters")
    return decision, comment or None


def secure(req: func.HttpRequest) -> bool:
    url: str = req.url
    return urlsplit(url).scheme == "https"


def _base_url() -> str | None:
    try:
        return keys.base_url()
    except keys.ApprovalConfigError:
        return None


# Answers ---------------------------------------------------------------------------------

def verdict_body(gate: OpenGate, verdict: Verdict) -> dict[str, Any]:
    body = {"releaseId": gate.release_id, "environment": gate.environment,
            "decision": verdict.decision, "counted": verdict.counted,
            "outcome": verdict.outcome, "reason": verdict.reason, "by": verdict.by,
            "at": verdict.at.isoformat() if verdict.at else None}
    if verdict.outcome == "Refused":
        body["error"] = verdict.reason or "the decision was not counted"
    return body


def html(status: int, page: str, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """The approval page with its security headers (and any extra ones)."""
    return html_response(page, status, {**SECURITY_HEADERS, "Content-Type": HTML_TYPE,
                                        **(headers or {})})


def json_answer(status: int, body: Any) -> func.HttpResponse:
    return json_response(body, status, NO_STORE)
