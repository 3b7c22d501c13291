"""The HTTP triggers' answers: JSON bodies, one-line JSON errors and HTML pages.

Sets the content type and the headers the caller names; which headers a page needs (its
security policy, caching) is the caller's to say. Builds no bodies beyond `{"error"}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import azure.functions as func


def json_response(body: object, status_code: int = 200,
                  headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """A JSON response with the right content type."""
    return func.HttpResponse(json.dumps(body), status_code=status_code,
                             mimetype="application/json", headers=dict(headers or {}))


def error_response(status_code: int, reason: str) -> func.HttpResponse:
    """A 4xx/5xx response whose body is `{"error": reason}` on one line."""
    return json_response({"error": " ".join(reason.split())}, status_code)


def html_response(page: str, status_code: int = 200,
                  headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """An HTML page in UTF-8 with the given headers."""
    return func.HttpResponse(page, status_code=status_code, mimetype="text/html",
                             charset="utf-8", headers=dict(headers or {}))
