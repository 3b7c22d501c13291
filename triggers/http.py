"""The HTTP triggers' plumbing: a request's JSON body and operator, its links, its refusals.

`answering` turns a `Refused` (or the operations desk's `Refusal`) into its 4xx, an
unreachable ledger or an invalid policy into a 503, each with a one-line reason. The
operator is `X-MS-CLIENT-PRINCIPAL-NAME` while App Service Authentication is on (which sets
it), else `anonymous`. Decides nothing about releases: shared/releases/ does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote, urlsplit

import azure.functions as func

from shared.approvals.keys import app_service_auth
from shared.json_input import read_json
from shared.ledger import LedgerError
from shared.policy.errors import PolicyError
from shared.releases.admission import CONFLICT, INVALID, NOT_FOUND, Refusal
from shared.text import one_line
from triggers.responses import error_response

log = logging.getLogger(__name__)

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
ANONYMOUS = "anonymous"
MAX_BODY = 64 * 1024
MAX_REASON = 500
# Answers with links, approval links (tokens) above all: never kept by a cache or proxy.
NO_STORE = {"Cache-Control": "no-store"}
REFUSAL_STATUS = {NOT_FOUND: 404, INVALID: 400, CONFLICT: 409}


class Refused(Exception):
    """A request we answer with a 4xx and a one-line reason; nothing was changed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def answering(answer: Callable[[], Awaitable[func.HttpResponse]]) -> func.HttpResponse:
    """Refusals become their 4xx, an unreachable ledger or policy a 503, each on one line."""
    try:
        return await answer()
    except Refused as refused:
        return error_response(refused.status, refused.reason)
    except Refusal as refusal:
        return error_response(REFUSAL_STATUS[refusal.kind], refusal.reason)
    except LedgerError as error:
        log.error("releases API: %s", error)
        return error_response(503, f"ledger unavailable: {error}")
    except PolicyError:
        log.exception("releases API: the release policy is invalid")
        return error_response(503, "release policy is invalid; see the app log")


def parse_json_body(body: bytes, limit: int = MAX_BODY) -> object:
    """Decode a request body as JSON; an empty body means no input (None).

    Raises ValueError (`JsonInputError`) with a one-line reason otherwise.
    """
    if not body.strip():
        return None
    return read_json(body, limit=limit)


def request_body(body: bytes, required: tuple[str, ...],
                 optional: tuple[str, ...] = ()) -> dict[str, str]:
    """The operation's JSON object of one-line strings; Refused(400/413) otherwise."""
    if len(body) > MAX_BODY:
        raise Refused(413, f"body is larger than {MAX_BODY} bytes")
    try:
        data = parse_json_body(body)
    except ValueError as bad:
        raise Refused(400, str(bad)) from None
    fields = ", ".join(required + optional)
    if not isinstance(data, dict):
        raise Refused(400, f"body must be a JSON object with {fields}")
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise Refused(400, f"unknown field {unknown[0]!r}; expected {fields}")
    parsed: dict[str, str] = {}
    for name in required + optional:
        value = data.get(name)
        if value is None and name in optional:
            continue
        if not isinstance(value, str) or not value.strip():
            raise Refused(400, f"{name} is required: a non-empty string")
        if len(value) > MAX_REASON:
            raise Refused(400, f"{name} is longer than {MAX_REASON} characters")
        parsed[name] = one_line(value)
    return parsed


def operator(headers: Mapping[str, str], settings: Mapping[str, str] | None = None) -> str:
    """Who asks: App Service Authentication's principal name, else `anonymous`.

    The header is read only while App Service Authentication is on (it then strips the
    header from requests and sets it itself); otherwise anyone could name anyone."""
    lookup = {key.lower(): value for key, value in headers.items()}
    if not app_service_auth(settings):
        if any(key.startswith("x-ms-client-principal") for key in lookup):
            log.warning("sign-in headers ignored: App Service Authentication is off"
                        " (WEBSITE_AUTH_ENABLED is not true); the operator is %s", ANONYMOUS)
        return ANONYMOUS
    return one_line(lookup.get(PRINCIPAL_HEADER.lower()) or "", 256) or ANONYMOUS


def origin(req: func.HttpRequest) -> str:
    """The scheme and host the caller used: links in answers point back there."""
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


def status_uri(base: str, release_id: str) -> str:
    """The releases API's link to one release or operation."""
    return f"{base}/api/releases/{quote(release_id, safe=':')}"
