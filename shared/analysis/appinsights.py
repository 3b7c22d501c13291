"""Application Insights as a metric provider: one KQL query, one number.

Runs the query through `azure-monitor-query`'s `LogsQueryClient` against an Application
Insights resource (`query_resource`) or a Log Analytics workspace (`query_workspace`) with
the app's identity (`DefaultAzureCredential`, or an injected credential). The token audience
is always passed: azure-monitor-query 2.x otherwise asks for a token for `endpoint`.

The number is the named column of the first row of the first table. No table, no row, or a
null/NaN value is "no data", a result of its own. A query the service rejects, a refused
token, an unreachable service, a partial result and a column that is missing or not a number
raise `AppInsightsError` saying which. Does not fill in query variables or compare with
thresholds: the analysis runtime does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import DefaultAzureCredential
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult, LogsQueryResult

from shared.text import one_line

LOGS_ENDPOINT = "https://api.loganalytics.io"
LOGS_AUDIENCE = "https://api.loganalytics.io"
MAX_KQL_CHARS = 20_000
_DETAIL_LIMIT = 300
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_SEGMENT = r"[A-Za-z0-9._()-]{1,90}"
_RESOURCE_ID = re.compile(
    rf"/subscriptions/{_GUID.pattern}/resourceGroups/{_SEGMENT}"
    rf"/providers/{_SEGMENT}(?:/{_SEGMENT}/{_SEGMENT})+", re.IGNORECASE)
_TRANSIENT = {408, 429}

Timespan = timedelta | tuple[datetime, datetime] | tuple[datetime, timedelta]


class Failure(StrEnum):
    """Why a query gave no number (no data is not a failure: see `QueryValue.no_data`)."""

    REJECTED = "rejected"  # the service refused the query: KQL error, unknown table, 400/404
    DENIED = "denied"  # no token, or the service refused it (401/403)
    UNREACHABLE = "unreachable"  # network, timeout, or 429/5xx after the client's retries
    PARTIAL = "partial"  # the service answered only part of the query
    BAD_RESULT = "bad-result"  # the column is missing or does not hold a number


class InvalidAppInsightsQuery(ValueError):
    """A query definition that cannot be sent (caught before any request)."""


class AppInsightsError(Exception):
    """A query that gave no number; `reason` is one line, fit for evidence."""

    def __init__(self, failure: Failure, target: str, reason: str) -> None:
        super().__init__(f"App Insights query on {target}: {reason}")
        self.failure = failure
        self.target = target
        self.reason = reason


@dataclass(frozen=True)
class LogsConnection:
    """How the client talks to the Logs API: retries, timeouts and, for local stacks, a CA."""

    ca_bundle: str | None = None
    retries: int = 2
    backoff_factor: float = 0.8
    connection_timeout: float = 10.0
    read_timeout: float = 60.0
    server_timeout: int | None = None  # seconds the service may spend (the `Prefer: wait=`)

    def client_kwargs(self) -> dict[str, Any]:
        return {"retry_total": self.retries, "retry_connect": self.retries,
                "retry_read": self.retries, "retry_status": self.retries,
                "retry_backoff_factor": self.backoff_factor,
                "connection_timeout": self.connection_timeout,
                "read_timeout": self.read_timeout,
                "connection_verify": self.ca_bundle or True}


@dataclass(frozen=True)
class QueryValue:
    """The number a query gave, or None for no data; `summary` says which in one line."""

    value: float | None
    summary: str
    rows: int

    @property
    def no_data(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class AppInsightsQuery:
    """One KQL query against one App Insights resource id or one workspace id (not both).

    `timespan` is a duration back from now, or (start, end) / (start, duration) with
    timezone-aware datetimes. `endpoint` (default the public Logs API) and `audience` go
    together for sovereign clouds; for a proxy or the local fake keep the default audience.
    """

    kql: str
    column: str
    timespan: Timespan
    resource_id: str | None = None
    workspace_id: str | None = None
    endpoint: str | None = None
    audience: str = LOGS_AUDIENCE
    credential: TokenCredential | None = field(default=None, compare=False, repr=False)
    managed_identity_client_id: str | None = None
    connection: LogsConnection = LogsConnection()

    def __post_init__(self) -> None:
        _check_target(self.resource_id, self.workspace_id)
        if not isinstance(self.kql, str) or not self.kql.strip():
            raise InvalidAppInsightsQuery("the KQL query is empty")
        if len(self.kql) > MAX_KQL_CHARS or "\x00" in self.kql:
            raise InvalidAppInsightsQuery(
                f"the KQL query is longer than {MAX_KQL_CHARS} characters or holds NUL")
        if not isinstance(self.column, str) or not self.column.strip() \
                or len(self.column) > 256 or not self.column.isprintable():
            raise InvalidAppInsightsQuery(
                f"column {one_line(self.column, 60, cut='…')!r} is not a column name")
        _check_timespan(self.timespan)
        _check_https(self.endpoint or LOGS_ENDPOINT, "endpoint", path_ok=False)
        _check_https(self.audience, "audience", path_ok=True)

    @property
    def target(self) -> str:
        """What is queried, as errors and evidence name it."""
        if self.resource_id is not None:
            return f"resource {self.resource_id}"
        return f"workspace {self.workspace_id}"

    def run(self) -> QueryValue:
        """Send the query once (the client retries transient failures) and read the number."""
        credential = self.credential or default_credential(self.managed_identity_client_id)
        client = LogsQueryClient(credential, endpoint=self.endpoint or LOGS_ENDPOINT,
                                 audience=self.audience, **self.connection.client_kwargs())
        options: dict[str, Any] = {"timespan": self.timespan,
                                   "server_timeout": self.connection.server_timeout}
        try:
            with client:
                if self.resource_id is not None:
                    result = client.query_resource(self.resource_id, self.kql, **options)
                else:
                    assert self.workspace_id is not None
                    result = client.query_workspace(self.workspace_id, self.kql, **options)
        except AzureError as error:
            raise self._classify(error) from error
        return self._read(result)

    def _read(self, result: LogsQueryResult | LogsQueryPartialResult) -> QueryValue:
        if isinstance(result, LogsQueryPartialResult):
            error = result.partial_error
            detail = _partial_detail(error.details if error else None) or (
                error.message if error else "no detail")
            raise AppInsightsError(Failure.PARTIAL, self.target, "the service answered only "
                                   f"part of the query: {_short(detail)}")
        if not result.tables:
            return QueryValue(None, "no data: the query returned no table", 0)
        table = result.tables[0]
        if self.column not in table.columns:
            shown = ", ".join(table.columns[:10]) or "none"
            raise AppInsightsError(Failure.BAD_RESULT, self.target, f"column {self.column!r} "
                                   f"is not in the result (columns: {_short(shown)})")
        if not table.rows:
            return QueryValue(None, "no data: the query returned no rows", 0)
        raw = table.rows[0][self.column]
        value = _number(raw)
        if value is None and raw is not None and raw != "NaN":
            raise AppInsightsError(Failure.BAD_RESULT, self.target, f"column {self.column!r}"
                                   f" holds {_short(repr(raw), 60)}, not a number")
        rows = len(table.rows)
        if value is None:
            return QueryValue(None, f"no data: {self.column} is empty in the first row", rows)
        return QueryValue(value, f"{self.column} = {value:g} (first of {rows} rows)", rows)

    def _classify(self, error: AzureError) -> AppInsightsError:
        target = self.target
        token_error = _token_failure(error)
        if token_error is not None:
            return AppInsightsError(Failure.DENIED, target, "could not get a token for "
                                    f"{self.audience}: {type(token_error).__name__}: "
                                    f"{_short(token_error.message)}")
        if isinstance(error, HttpResponseError) and error.status_code is not None:
            status = error.status_code
            code, message = _service_error(error)
            said = f"HTTP {status}{f' {code}' if code else ''}: {_short(message)}"
            if status in (401, 403):
                hint = f"; the token was for {self.audience}" if "Token" in code else (
                    "; the app's identity needs read access (e.g. Monitoring Reader) on it"
                    if status == 403 else "")
                return AppInsightsError(Failure.DENIED, target,
                                        f"the service refused the app's token ({said}){hint}")
            if status in _TRANSIENT or status >= 500:
                return AppInsightsError(Failure.UNREACHABLE, target,
                                        f"the service is unavailable ({said})")
            return AppInsightsError(Failure.REJECTED, target, f"the query was rejected ({said})")
        if isinstance(error, ServiceRequestError | ServiceResponseError):
            return AppInsightsError(Failure.UNREACHABLE, target, f"{self.endpoint or LOGS_ENDPOINT}"
                                    f" could not be reached: {type(error).__name__}: "
                                    f"{_short(error.message)}")
        return AppInsightsError(Failure.UNREACHABLE, target,
                                f"{type(error).__name__}: {_short(error.message)}")


@lru_cache(maxsize=8)
def default_credential(managed_identity_client_id: str | None = None) -> DefaultAzureCredential:
    """The app's identity, one per process (so its tokens are cached between queries)."""
    if managed_identity_client_id:
        return DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)
    return DefaultAzureCredential()


def _check_target(resource_id: str | None, workspace_id: str | None) -> None:
    if (resource_id is None) == (workspace_id is None):
        raise InvalidAppInsightsQuery("give either a resource id or a workspace id, not both "
                                      "nor neither")
    if resource_id is not None and not (
            isinstance(resource_id, str) and _RESOURCE_ID.fullmatch(resource_id)):
        raise InvalidAppInsightsQuery(
            f"resource id {one_line(resource_id, 120, cut='…')!r} is not of the form "
            "/subscriptions/<guid>/resourceGroups/<group>/providers/<namespace>/<type>/<name>")
    if workspace_id is not None and not (
            isinstance(workspace_id, str) and _GUID.fullmatch(workspace_id)):
        raise InvalidAppInsightsQuery(
            f"workspace id {one_line(workspace_id, 60, cut='…')!r} is not a GUID (the "
            "workspace's Workspace ID)")


def _check_timespan(timespan: object) -> None:
    if isinstance(timespan, timedelta):
        if timespan <= timedelta(0):
            raise InvalidAppInsightsQuery("the timespan must be longer than zero")
        return
    if not (isinstance(timespan, tuple) and len(timespan) == 2
            and isinstance(timespan[0], datetime)):
        raise InvalidAppInsightsQuery("the timespan must be a duration, (start, end) or "
                                      "(start, duration)")
    start, second = timespan
    if start.tzinfo is None or (isinstance(second, datetime) and second.tzinfo is None):
        raise InvalidAppInsightsQuery("the timespan's datetimes must carry a time zone")
    end = second if isinstance(second, datetime) else (
        start + second if isinstance(second, timedelta) else None)
    if end is None or end <= start:
        raise InvalidAppInsightsQuery("the timespan must end after it starts")


def _check_https(url: object, what: str, *, path_ok: bool) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname or parts.username \
            or parts.password or parts.query or parts.fragment \
            or (not path_ok and parts.path not in ("", "/")):
        raise InvalidAppInsightsQuery(f"{what} {one_line(url, 80, cut='…')!r} is not an "
                                      "https URL of a host")


def _number(raw: object) -> float | None:
    """A finite or infinite number from a cell; None for null, NaN or a non-number."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):  # decimal, and real NaN/Infinity, travel as strings
        try:
            value = float(raw)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(value) else value


def _token_failure(error: BaseException) -> ClientAuthenticationError | None:
    """The credential's failure behind `error`, if that is what it is.

    The client re-raises every HttpResponseError as a plain one (the credential's
    ClientAuthenticationError, which has no response, becomes its context)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientAuthenticationError) and current.response is None:
            return current
        if isinstance(current, HttpResponseError) and current.response is not None:
            return None
        current = current.__cause__ or current.__context__
    return None


def _service_error(error: HttpResponseError) -> tuple[str, str]:
    """The service's top error code and its innermost message (from the response body)."""
    try:
        body = json.loads(error.response.text()) if error.response is not None else None
    except (ValueError, AttributeError):
        body = None
    current = body.get("error") if isinstance(body, dict) else None
    if not isinstance(current, dict):
        return "", error.reason or "no error detail"
    code, message = str(current.get("code") or ""), str(current.get("message") or "")
    while isinstance(current.get("innererror"), dict):
        current = current["innererror"]
        message = str(current.get("message") or message)
    return code, message


def _partial_detail(details: object) -> str:
    if isinstance(details, list):  # items are the SDK's models: mappings, not dicts
        messages = [str(d.get("message")) for d in details if isinstance(d, Mapping)
                    and d.get("message")]
        return "; ".join(messages)
    return ""


def _short(text: object, limit: int = _DETAIL_LIMIT) -> str:
    return one_line(text, limit, cut="…")
