"""The `prometheus` provider: one PromQL instant query against a Prometheus HTTP API, one number.

Works with any server that speaks Prometheus's `/api/v1/query` (Prometheus itself, Azure
Monitor managed Prometheus, Thanos, Mimir…), with no auth, a bearer token the caller resolved
from its secrets, or an Entra token of the app's identity. The outcome is a `Number`, `NoData`
(empty vector, NaN), or a `ProviderError` saying why there is no number. Tokens are never
logged, never put in an error, and never sent in clear beyond loopback. Does not judge the
number: thresholds and verdicts belong to the analysis that asked.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError

from shared.text import one_line

# The audience of Azure Monitor managed Prometheus's query endpoint.
AZURE_MONITOR_PROMETHEUS_SCOPE = "https://prometheus.monitor.azure.com/.default"
QUERY_PATH = "/api/v1/query"
DEFAULT_TIMEOUT = 10.0
CONNECT_TIMEOUT = 3.0
MAX_QUERY_CHARS = 10_000
MAX_ANSWER_BYTES = 1 << 20
REASON_CHARS = 300
# Prometheus's error types for a query it cannot parse or evaluate (HTTP 400 and 422).
QUERY_ERROR_TYPES = frozenset({"bad_data", "execution"})
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


@dataclass(frozen=True)
class NoAuth:
    """No Authorization header (a Prometheus on a private network)."""


@dataclass(frozen=True)
class BearerToken:
    """`Authorization: Bearer <token>`; the caller passes the secret's value, never its name."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class EntraIdentity:
    """An Entra token of the app's identity (Azure Monitor managed Prometheus needs Monitoring
    Data Reader on the workspace); `DefaultAzureCredential` unless a credential is given."""

    credential: TokenCredential | None = field(default=None, compare=False, repr=False)
    managed_identity_client_id: str | None = None
    scope: str = AZURE_MONITOR_PROMETHEUS_SCOPE


Auth = NoAuth | BearerToken | EntraIdentity


@dataclass(frozen=True)
class Number:
    """The query's one number and the evaluation time it holds for (Unix seconds)."""

    value: float
    at: float


@dataclass(frozen=True)
class NoData:
    """The query answered, without a number: no series matched, or the value is NaN."""

    reason: str


Outcome = Number | NoData


class InvalidQuery(ValueError):
    """A query definition that cannot be sent (caught before any request)."""


class ProviderError(Exception):
    """No number and no answer that means "no data"; the message is one line, fit for evidence.

    `failure` says which kind, as the App Insights provider says it: "unreachable" (worth a
    retry), "denied", "rejected" or "bad-result" (no retry will change them).
    """

    failure: str = "unreachable"

    @property
    def retryable(self) -> bool:
        return self.failure == "unreachable"


class ProviderUnreachable(ProviderError):
    """No HTTP answer: connection refused, name unknown, TLS failure, timeout."""


class ProviderHttpError(ProviderError):
    """An HTTP status other than 200 that is not Prometheus refusing the query."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        if status in (401, 403):
            self.failure = "denied"
        elif status not in (408, 429) and status < 500:
            self.failure = "rejected"


class QueryRejected(ProviderError):
    """Prometheus refused the query (it cannot parse or evaluate it): its message, one line."""

    failure = "rejected"


class TokenUnavailable(ProviderError):
    """The app's identity got no Entra token for the scope."""

    failure = "denied"


class UnusableResult(ProviderError):
    """An answer that is not one number: several series, a range vector, a string, or not
    Prometheus's answer format at all."""

    failure = "bad-result"


@dataclass(frozen=True)
class PrometheusQuery:
    """A PromQL instant query against the API at `url` (the part before `/api/v1/query`)."""

    url: str
    query: str
    auth: Auth = NoAuth()
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        _check_url(self.url, sends_token=not isinstance(self.auth, NoAuth))
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidQuery("prometheus query: empty PromQL")
        if len(self.query) > MAX_QUERY_CHARS:
            raise InvalidQuery(f"prometheus query: {len(self.query)} characters, "
                               f"at most {MAX_QUERY_CHARS}")
        if isinstance(self.auth, BearerToken) and not _header_safe(self.auth.token):
            raise InvalidQuery("prometheus query: the bearer token is empty or not one line")
        if not 0 < self.timeout <= 300:
            raise InvalidQuery(f"prometheus query: timeout {self.timeout:g} s is out of "
                               "range (0, 300]")

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + QUERY_PATH

    def run(self, at: datetime | None = None) -> Outcome:
        """Evaluate the query now (or at the timezone-aware `at`): a Number, or NoData.
        ProviderError (one of its kinds) when there is neither."""
        params = {"query": self.query}
        if at is not None:
            if at.tzinfo is None:
                raise InvalidQuery("prometheus query: the evaluation time needs a timezone")
            params["time"] = f"{at.timestamp():.3f}"
        token = self._token()
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        status, body = self._get(params, headers, token)
        return _outcome(status, body, self._where(), token)

    def _token(self) -> str | None:
        auth = self.auth
        if isinstance(auth, BearerToken):
            return auth.token
        if isinstance(auth, EntraIdentity):
            credential = auth.credential or default_credential(auth.managed_identity_client_id)
            try:
                token = str(credential.get_token(auth.scope).token)
            except AzureError as failed:
                raise TokenUnavailable(
                    f"{self._where()}: no Entra token for {auth.scope}: "
                    f"{one_line(failed.message, REASON_CHARS, cut='…')}") from None
            if not _header_safe(token):
                raise TokenUnavailable(f"{self._where()}: the Entra token for {auth.scope} "
                                       "is empty or not one line")
            return token
        return None

    def _get(self, params: dict[str, str], headers: dict[str, str],
             token: str | None) -> tuple[int, bytes]:
        where = self._where()
        # requests bounds each read, not the whole answer: a trickling server meets `deadline`.
        deadline = time.monotonic() + self.timeout
        try:
            with requests.Session() as session, session.get(
                    self.endpoint, params=params, headers=headers, stream=True,
                    allow_redirects=False,
                    timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout)) as response:
                status = response.status_code
                body = b""
                # read1 returns what has come, so the deadline is checked while bytes trickle.
                while chunk := response.raw.read1(64 * 1024, decode_content=True):
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        break
                    if time.monotonic() > deadline:
                        raise requests.Timeout()
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise ProviderUnreachable(f"{where} unreachable: no answer within "
                                      f"{self.timeout:g} s") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as failed:
            raise ProviderUnreachable(f"{where} unreachable: "
                                      f"{_redact(_cause(failed), token)}") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise UnusableResult(f"{where}: an answer of more than {MAX_ANSWER_BYTES} bytes "
                                 "(is this one number?)")
        return status, body

    def _where(self) -> str:
        """The API's address as errors name it (the URL was checked to hold no credentials)."""
        return f"prometheus at {self.url.rstrip('/')}"


@lru_cache(maxsize=8)
def default_credential(managed_identity_client_id: str | None = None) -> TokenCredential:
    """The app's identity, one credential per process (and per user-assigned identity)."""
    from azure.identity import DefaultAzureCredential

    if managed_identity_client_id:
        return DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)
    return DefaultAzureCredential()


def _outcome(status: int, body: bytes, where: str, token: str | None) -> Outcome:
    """The one number of Prometheus's answer, or why there is none."""
    answer = _json(body)
    if not isinstance(answer, dict) or answer.get("status") not in ("success", "error"):
        excerpt = _redact(one_line(body.decode(errors="replace"), 120, cut="…"), token)
        if status != 200:
            raise ProviderHttpError(f"{where} answered HTTP {status}"
                                    + (f": {excerpt}" if excerpt else ""), status)
        raise UnusableResult(f"{where}: not a Prometheus API answer: {excerpt!r}")
    if answer["status"] == "error":
        error_type = str(answer.get("errorType") or "error")
        message = _redact(one_line(answer.get("error") or "no message", REASON_CHARS, cut="…"),
                          token)
        if error_type in QUERY_ERROR_TYPES:
            raise QueryRejected(f"{where} rejected the query ({error_type}): {message}")
        raise ProviderHttpError(f"{where} answered HTTP {status} ({error_type}): {message}",
                                status)
    if status != 200:
        raise ProviderHttpError(f"{where} answered HTTP {status} with a success body", status)
    return _number(answer.get("data"), where)


def _number(data: Any, where: str) -> Outcome:
    if not isinstance(data, dict):
        raise UnusableResult(f"{where}: the answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _sample(result, where)
    if kind != "vector":
        raise UnusableResult(f"{where}: the query gives a {kind}, not one number"
                             + (" (wrap the range in a function such as rate() or"
                                " max_over_time())" if kind == "matrix" else ""))
    if not isinstance(result, list):
        raise UnusableResult(f"{where}: the vector holds no list of series")
    if not result:
        return NoData("no series matched")
    if len(result) > 1:
        shown = ", ".join(_labels(series) for series in result[:3])
        raise UnusableResult(f"{where}: the query gives {len(result)} series ({shown}"
                             f"{', …' if len(result) > 3 else ''}), not one number: aggregate "
                             "them, e.g. with sum() or max()")
    series = result[0]
    return _sample(series.get("value") if isinstance(series, dict) else None, where)


def _sample(pair: Any, where: str) -> Outcome:
    """`[unix_time, "value"]` as a Number, NaN as NoData."""
    try:
        at, text = pair
        value, at = float(text), float(at)
    except (TypeError, ValueError):
        raise UnusableResult(f"{where}: a sample that is not [time, value]: "
                             f"{one_line(repr(pair), 80, cut='…')}") from None
    if math.isnan(value):
        return NoData("the value is NaN")
    return Number(value, at)


def _labels(series: Any) -> str:
    metric = series.get("metric") if isinstance(series, dict) else None
    if not isinstance(metric, dict):
        return "{}"
    text = ",".join(f'{name}="{value}"' for name, value in sorted(metric.items()))
    return one_line("{" + text + "}", 80, cut="…")


def _check_url(url: object, *, sends_token: bool) -> None:
    if not isinstance(url, str):
        raise InvalidQuery("prometheus url: expected http(s)://host[:port][/path]")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidQuery("prometheus url: not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidQuery("prometheus url: expected http(s)://host[:port][/path]")
    if parts.username is not None or parts.password is not None:
        raise InvalidQuery("prometheus url: holds credentials; pass a bearer token instead")
    if parts.query or parts.fragment:
        raise InvalidQuery("prometheus url: the API's base URL takes no query or fragment")
    if not _header_safe(url):
        raise InvalidQuery("prometheus url: holds whitespace or control characters")
    if sends_token and parts.scheme == "http" and not _loopback(parts.hostname):
        raise InvalidQuery(f"prometheus url: refusing to send a token in clear to "
                           f"{parts.hostname}; use https")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _header_safe(text: str) -> bool:
    return bool(text) and text.isprintable() and not any(c.isspace() for c in text)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _cause(failed: BaseException) -> str:
    """The innermost reason of a connection failure ("Connection refused"), else its type."""
    found = _ERRNO.search(str(failed))
    if found:
        return found.group(1).strip()
    if isinstance(failed, (requests.exceptions.ChunkedEncodingError,
                           urllib3.exceptions.ProtocolError)):
        return "the connection broke before the answer was complete"
    return type(failed).__name__


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text
