"""Small helpers for JSON HTTP responses shared by the HTTP triggers."""

from __future__ import annotations

import json

import azure.functions as func


def json_response(body: object, status_code: int = 200) -> func.HttpResponse:
    """A JSON response with the right content type."""
    return func.HttpResponse(json.dumps(body), status_code=status_code, mimetype="application/json")


def error_response(status_code: int, reason: str) -> func.HttpResponse:
    """A 4xx/5xx response whose body is `{"error": reason}` on one line."""
    return json_response({"error": " ".join(reason.split())}, status_code)
