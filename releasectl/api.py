"""The app's HTTP API as `releasectl` calls it: one method per route, errors as exceptions.

The function key (`x-functions-key`) goes only to the API's own origin, never to another
host named by an approval link. Error messages carry the API's one-line reason and the
origin called, never a key, token or query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

KEY_HEADER = "x-functions-key"
DEFAULT_TIMEOUT = 30.0
MAX_REASON = 300


class ApiError(Exception):
    """The API answered with an error; `reason` is one line."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Unreachable(Exception):
    """The API could not be reached (refused, timed out, DNS); says which origin."""


class BadTarget(ValueError):
    """A URL or id that cannot be used; the message is one line."""


def origin(url: str) -> str:
    """`scheme://host:port` of a URL (what error messages name)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def check_base_url(url: str) -> str:
    """The API's base URL without a trailing slash; BadTarget unless absolute http(s)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadTarget(f"--url must be an absolute http(s) URL such as "
                        f"http://127.0.0.1:7071, not {url[:80]!r}")
    return url.strip().rstrip("/")


def release_path(release_id: str) -> str:
    return "/api/releases/" + quote(release_id, safe=":")


def approval_url(base: str, release_id: str, environment: str, token: str) -> str:
    """The approval page of a release's gate, as the app's links spell it."""
    return (f"{base}{release_path(release_id)}/approvals/{quote(environment, safe='')}"
            f"?token={quote(token, safe='')}")


@dataclass
class Api:
    """A client of one app: base URL, optional function key, timeout."""

    base: str
    key: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        self.base = check_base_url(self.base)
        self.session = requests.Session()

    # Routes ---------------------------------------------------------------------------------

    def releases(self, service: str | None = None, state: str | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
        params = {name: value for name, value in (("service", service), ("state", state),
                                                  ("limit", limit)) if value is not None}
        return rows_of(self.call("GET", self.base + "/api/releases", params=params), self.base)

    def release(self, release_id: str) -> dict[str, Any]:
        return object_of(self.call("GET", self.base + release_path(release_id)), self.base)

    def operation(self, kind: str, release_id: str, environment: str,
                  reason: str | None) -> dict[str, Any]:
        body = {"environment": environment}
        if reason is not None:
            body["reason"] = reason
        return object_of(self.call("POST", f"{self.base}{release_path(release_id)}/{kind}",
                                   json=body), self.base)

    def resolve(self, release_id: str, environment: str, decision: str,
                reason: str) -> dict[str, Any]:
        """Roll back or keep a failed deployment that waits for a person."""
        return object_of(self.call("POST", f"{self.base}{release_path(release_id)}/resolve",
                                   json={"environment": environment, "decision": decision,
                                         "reason": reason}), self.base)

    def delivery(self, service: str | None = None, days: int | None = None) -> dict[str, Any]:
        """The delivery figures (DORA) of the last `days` days."""
        params = {name: value for name, value in (("service", service), ("days", days))
                  if value is not None}
        return object_of(self.call("GET", self.base + "/api/metrics/delivery", params=params),
                         self.base)

    def decide(self, link: str, decision: str, comment: str | None) -> tuple[int, object]:
        """POST the decision to an approval page link; (status, body), 409 included."""
        body: dict[str, Any] = {"decision": decision}
        if comment:
            body["comment"] = comment
        answer: tuple[int, object] = self.call("POST", link, json=body, with_status=True,
                                               allow=(409,))
        return answer

    # Plumbing -------------------------------------------------------------------------------

    def call(self, method: str, url: str, *, params: dict[str, Any] | None = None,
             json: Any = None, with_status: bool = False, allow: tuple[int, ...] = ()) -> Any:
        headers = {"Accept": "application/json"}
        if self.key and origin(url) == origin(self.base):
            headers[KEY_HEADER] = self.key
        try:
            response = self.session.request(method, url, params=params, json=json,
                                            headers=headers, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise Unreachable(f"cannot reach the release API at {origin(url)}: "
                              f"{_network_reason(error)}") from None
        except requests.RequestException as error:
            raise BadTarget(f"cannot call {origin(url)}: {type(error).__name__}") from None
        body = _body(response)
        if response.status_code >= 400 and response.status_code not in allow:
            raise ApiError(response.status_code, error_reason(response, body))
        return (response.status_code, body) if with_status else body


def object_of(body: Any, base: str) -> dict[str, Any]:
    """The API's answer as the JSON object it sends; BadTarget when it sent something else."""
    if isinstance(body, dict):
        return body
    raise BadTarget(f"{origin(base)} did not answer as the release API does (expected a "
                    "JSON object)")


def rows_of(body: Any, base: str) -> list[dict[str, Any]]:
    """The API's answer as the list of JSON objects it sends; BadTarget otherwise."""
    if isinstance(body, list) and all(isinstance(row, dict) for row in body):
        return body
    raise BadTarget(f"{origin(base)} did not answer as the release API does (expected a "
                    "JSON list of releases)")


def error_reason(response: requests.Response, body: Any) -> str:
    """The API's `{"error"}` line, else the HTTP status and its phrase."""
    if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip():
        return _line(body["error"])
    if response.status_code in (401, 403):
        return (f"HTTP {response.status_code} {response.reason}: the API wants a function key "
                "(--key or RELEASE_API_KEY) or a signed-in identity")
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def _body(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _network_reason(error: Exception) -> str:
    if isinstance(error, requests.Timeout):
        return "timed out"
    text = str(error)
    for words in ("Connection refused", "Name or service not known", "No route to host",
                  "Temporary failure in name resolution", "Network is unreachable"):
        if words in text:
            return words.lower()
    return "connection failed"


def _line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"
