"""An Azure Monitor Logs query API protocol fake over TLS: bearer tokens checked by audience,
queries recorded, answers set by the test.

Speaks what `azure-monitor-query` 2.x (`LogsQueryClient`) sends, at the HTTP level:

- `POST /v1/workspaces/{workspaceId}/query` (`query_workspace`) and
  `POST /v1/{resourceId}/query` (`query_resource`, e.g. an Application Insights component
  `/subscriptions/…/providers/microsoft.insights/components/…`), body
  `{"query", "timespan", "workspaces"}` (timespan ISO 8601: `PT300.0S` or `start/end`),
  optional `Prefer` header; the query-string GET form is served too;
- 200 `{"tables": [{"name", "columns": [{"name", "type"}], "rows": [[…]]}]}`, plus
  `"error": {"code": "PartialError", …}` for a partial result;
- errors in the service's shape `{"error": {"code", "message", "correlationId",
  "innererror": {…}}}`: 401 `AuthenticationFailed` without a bearer token, 403
  `InvalidAuthenticationToken` for a token it did not issue or that expired, 403
  `InvalidTokenError` for a token issued for another audience, and whatever the test sets
  (a KQL syntax error is 400 `BadArgumentError` › `SyntaxError` › `SYN0002`).

Tokens: `credential()` is a TokenCredential standing in for Entra ID: it mints HS256 JWTs
whose `aud` is the requested scope without `/.default`, signed with this fake's key;
`managed_identity()` serves the same tokens over App Service's managed identity protocol
(`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`) for a process using `DefaultAzureCredential`. The
fake accepts only its own tokens for the Logs API audience (`https://api.loganalytics.io`,
or what `accept_audiences` sets), so a client that asks for a token for its endpoint (the
SDK's default when `audience` is not passed) is refused, as Azure would refuse it.

It is not a KQL engine: the answer does not depend on the query text. Runs its own asyncio
loop in a background thread (see `threaded.py`); tokens are never logged (only the test
credential keeps those it issued).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from aiohttp import web
from azure.core.credentials import AccessToken

from sandbox.threaded import ThreadedServer
from sandbox.tls import TlsFiles

LOGS_AUDIENCE = "https://api.loganalytics.io"
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TOKEN_LIFETIME = 3600
_MESSAGES = {
    400: ("BadArgumentError", "The request had some invalid properties"),
    403: ("InsufficientAccessError", "The provided credentials have insufficient access to "
                                     "perform the requested operation"),
    404: ("PathNotFoundError", "The requested path does not exist"),
    429: ("ThrottledError", "Too many requests (injected by MonitorLogsFake)."),
    500: ("InternalServerError", "An internal error occurred (injected by MonitorLogsFake)."),
    503: ("ServiceUnavailableError", "The service is unavailable (injected by MonitorLogsFake)."),
}

Row = Sequence[Any]


@dataclass(frozen=True)
class LogsQuery:
    """One query the fake received: which resource or workspace, the KQL, the timespan."""

    kind: str  # "resource" or "workspace"
    target: str  # the resource id as in the path (leading slash), or the workspace id
    query: str
    timespan: str | None
    workspaces: tuple[str, ...] = ()
    prefer: str | None = None


@dataclass(frozen=True)
class Table:
    """One result table: `columns` as (name, Kusto type) pairs, rows of JSON values."""

    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[Any, ...], ...] = ()
    name: str = "PrimaryResult"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name,
                "columns": [{"name": n, "type": t} for n, t in self.columns],
                "rows": [list(row) for row in self.rows]}


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]
    times: int | None = None  # None: until replaced


@dataclass
class _State:
    queries: list[LogsQuery] = field(default_factory=list)
    answers: dict[str | None, list[_Answer]] = field(default_factory=dict)
    requests: int = 0
    refused: int = 0


class EntraTokenFake:
    """A TokenCredential minting this fake's tokens; records the scopes it was asked for
    and the tokens it issued (so tests can look for them where they must not be)."""

    def __init__(self, key: bytes, tenant: str) -> None:
        self._key = key
        self.tenant = tenant
        self.scopes: list[tuple[str, ...]] = []
        self.issued: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        audience = scopes[0].removesuffix("/.default") if scopes else ""
        token = mint_token(self._key, audience, self.tenant)
        self.issued.append(token)
        return AccessToken(token, int(time.time()) + TOKEN_LIFETIME)

    def close(self) -> None:
        """Nothing to release (the SDK calls this when a client is closed)."""


class ManagedIdentityFake(ThreadedServer):
    """App Service's managed identity endpoint on `http://127.0.0.1:PORT`, minting the Logs
    fake's tokens, so `DefaultAzureCredential` works unchanged in a process given
    `environment()`. Plain HTTP on loopback, as on App Service; the header secret is checked."""

    thread_name = "managed-identity-fake"

    def __init__(self, key: bytes, tenant: str, port: int = 0) -> None:
        super().__init__()
        self.port = port
        self._key = key
        self.tenant = tenant
        self._secret = secrets.token_urlsafe(24)
        self._lock = threading.Lock()
        self.resources: list[str] = []

    def environment(self) -> dict[str, str]:
        """The app settings that point azure-identity's ManagedIdentityCredential here."""
        return {"IDENTITY_ENDPOINT": f"http://127.0.0.1:{self.port}/msi/token",
                "IDENTITY_HEADER": self._secret}

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if not hmac.compare_digest(request.headers.get("X-IDENTITY-HEADER", ""), self._secret):
            return _reply(401, {"error": "invalid_request",
                                "error_description": "X-IDENTITY-HEADER is missing or wrong"})
        resource = request.rel_url.query.get("resource", "")
        if not resource:
            return _reply(400, {"error": "invalid_request",
                                "error_description": "resource is required"})
        audience = resource.removesuffix("/.default")
        with self._lock:
            self.resources.append(audience)
        return _reply(200, {"access_token": mint_token(self._key, audience, self.tenant),
                            "expires_on": str(int(time.time()) + TOKEN_LIFETIME),
                            "resource": audience, "token_type": "Bearer"})


class MonitorLogsFake(ThreadedServer):
    """The Logs query API (`/v1`) on `https://127.0.0.1:PORT`."""

    thread_name = "monitor-logs-fake"

    def __init__(self, tls: TlsFiles, port: int = 0, *, tenant: str = DEFAULT_TENANT) -> None:
        super().__init__()
        self.tls = tls
        self.port = port
        self.tenant = tenant
        self._key = secrets.token_bytes(32)
        self._audiences = {LOGS_AUDIENCE}
        self._lock = threading.Lock()
        self._state = _State()

    @property
    def endpoint(self) -> str:
        """What `LogsQueryClient(endpoint=…)` takes: `https://127.0.0.1:PORT`."""
        return f"https://127.0.0.1:{self.port}"

    # -- tokens ----------------------------------------------------------------------------

    def token(self, audience: str = LOGS_AUDIENCE, lifetime: int = TOKEN_LIFETIME) -> str:
        """One token of this fake's issuer (for raw HTTP tests; negative lifetime: expired)."""
        return mint_token(self._key, audience, self.tenant, lifetime)

    def credential(self) -> EntraTokenFake:
        """A credential whose tokens this fake accepts when asked for an accepted audience."""
        return EntraTokenFake(self._key, self.tenant)

    def managed_identity(self, port: int = 0) -> ManagedIdentityFake:
        """An App Service managed identity endpoint issuing tokens this fake accepts (start it
        with `with` or `start()`), for a process that uses `DefaultAzureCredential`."""
        return ManagedIdentityFake(self._key, self.tenant, port)

    def accept_audiences(self, *audiences: str) -> None:
        """Accept tokens for exactly these audiences from now on (default: the Logs API's)."""
        with self._lock:
            self._audiences = set(audiences)

    # -- what the service answers ----------------------------------------------------------

    def answer(self, *tables: Table, target: str | None = None,
               partial_error: str | None = None) -> None:
        """Answer every query (for `target`, a resource or workspace id, or any) with these
        tables from now on; `partial_error` makes it a partial result with that message."""
        body: dict[str, Any] = {"tables": [t.to_json() for t in tables]}
        if partial_error is not None:
            body["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [{"code": "EngineError", "message": partial_error,
                             "severity": 2, "severityName": "Error"}]}
        self._set(target, _Answer(200, body))

    def answer_value(self, column: str, value: Any, kusto_type: str = "real", *,
                     target: str | None = None) -> None:
        """Answer one table of one column and one row holding `value`."""
        self.answer(Table(((column, kusto_type),), ((value,),)), target=target)

    def reject(self, status: int, code: str | None = None, message: str | None = None, *,
               inner: Sequence[tuple[str, str]] = (), target: str | None = None,
               times: int | None = None) -> None:
        """Answer with the service's error shape: `status`, top-level `code` and `message`
        (defaults fit the status), `inner` as nested `innererror` (code, message) pairs;
        for the next `times` queries (then the previous answer again), or until replaced."""
        default_code, default_message = _MESSAGES.get(status, ("Error", f"HTTP {status}"))
        body = _error_body(code or default_code, message or default_message, inner)
        self._set(target, _Answer(status, body, times), replace=times is None)

    def syntax_error(self, message: str, *, target: str | None = None) -> None:
        """Reject queries as the service rejects KQL it cannot parse (`message` innermost)."""
        self.reject(400, "BadArgumentError", "The request had some invalid properties",
                    inner=[("SyntaxError", "A recognition error occurred in the query."),
                           ("SYN0002", message)], target=target)

    # -- what the fake saw -----------------------------------------------------------------

    def queries(self) -> list[LogsQuery]:
        """Every authenticated query so far, in order."""
        with self._lock:
            return list(self._state.queries)

    def counts(self) -> tuple[int, int]:
        """(requests, refused for authentication) so far."""
        with self._lock:
            return self._state.requests, self._state.refused

    def reset(self) -> None:
        """Forget answers, queries and counts (accepted audiences stay)."""
        with self._lock:
            self._state = _State()

    def _set(self, target: str | None, answer: _Answer, *, replace: bool = True) -> None:
        with self._lock:
            queue = self._state.answers.setdefault(_key(target), [])
            if replace:
                queue.clear()
                queue.append(answer)
            else:
                queue.insert(0, answer)

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        with self._lock:
            self._state.requests += 1
        refusal = self._check_token(request.headers.get("Authorization", ""))
        if refusal is not None:
            with self._lock:
                self._state.refused += 1
            return refusal
        path = request.rel_url.raw_path
        if not path.startswith("/v1/") or not path.endswith("/query") \
                or request.method not in ("GET", "POST"):
            return _reply(*self._error_answer(404))
        target_path = unquote(path.removeprefix("/v1").removesuffix("/query")).rstrip("/")
        while target_path.startswith("//"):  # the SDK joins "/v1/" and "/subscriptions/…"
            target_path = target_path[1:]
        if target_path.startswith("/workspaces/") and target_path.count("/") == 2:
            kind, target = "workspace", target_path.removeprefix("/workspaces/")
        elif target_path.lower().startswith("/subscriptions/"):
            kind, target = "resource", target_path
        else:
            return _reply(*self._error_answer(404))
        try:
            params = await _params(request)
        except ValueError as error:
            return _reply(400, _error_body("BadArgumentError", str(error), ()))
        query = params.get("query")
        if not isinstance(query, str) or not query.strip():
            return _reply(400, _error_body("BadArgumentError", "The request had some invalid "
                                           "properties", [("QueryValidationError",
                                                           "Query is missing or empty")]))
        timespan = params.get("timespan")
        workspaces = params.get("workspaces") or ()
        record = LogsQuery(kind, target, query, timespan if isinstance(timespan, str) else None,
                           tuple(str(w) for w in workspaces), request.headers.get("Prefer") or None)
        with self._lock:
            self._state.queries.append(record)
            answer = self._take_answer(target)
        return _reply(answer.status, answer.body)

    def _check_token(self, header: str) -> web.Response | None:
        if not header.startswith("Bearer ") or not header.removeprefix("Bearer ").strip():
            return _reply(401, _error_body("AuthenticationFailed", "Authentication failed. "
                                           "The 'Authorization' header is missing.", ()))
        claims = read_token(self._key, header.removeprefix("Bearer ").strip())
        if claims is None or float(claims.get("exp", 0)) < time.time():
            return _reply(403, _error_body("InvalidAuthenticationToken",
                                           "The access token is invalid.", ()))
        with self._lock:
            accepted = claims.get("aud") in self._audiences
        if not accepted:
            return _reply(403, _error_body(
                "InvalidTokenError", "The provided authentication is not valid for this "
                "resource", [("InvalidAudience", f"Audience '{claims.get('aud')}' is not "
                              "accepted by this API.")]))
        return None

    def _take_answer(self, target: str) -> _Answer:
        for key in (_key(target), None):
            queue = self._state.answers.get(key)
            if queue:
                answer = queue[0]
                if answer.times is not None:
                    remaining = answer.times - 1
                    queue[0] = _Answer(answer.status, answer.body, remaining)
                    if remaining <= 0:
                        queue.pop(0)
                return answer
        return _Answer(200, {"tables": [Table(()).to_json()]})

    def _error_answer(self, status: int) -> tuple[int, dict[str, Any]]:
        code, message = _MESSAGES[status]
        return status, _error_body(code, message, ())


def mint_token(key: bytes, audience: str, tenant: str, lifetime: int = TOKEN_LIFETIME) -> str:
    """An HS256 JWT for `audience` signed with `key` (the fake's own token format)."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"aud": audience, "iss": f"https://sts.windows.net/{tenant}/", "tid": tenant,
              "iat": now, "nbf": now, "exp": now + lifetime,
              "oid": str(uuid.uuid4())}
    signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
    return f"{signing_input}.{_b64(_sign(key, signing_input))}"


def read_token(key: bytes, token: str) -> dict[str, Any] | None:
    """The claims of a token `key` signed, or None for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_b64(_sign(key, signing_input)), parts[2]):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def _key(target: str | None) -> str | None:
    return None if target is None else target.lower()


def _sign(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode(), hashlib.sha256).digest()


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _params(request: web.BaseRequest) -> Mapping[str, Any]:
    if request.method == "GET":
        query = parse_qs(request.rel_url.raw_query_string)
        return {name: values[0] for name, values in query.items()}
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as error:
        raise ValueError(f"The request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise ValueError("The request body must be a JSON object")
    return body


def _error_body(code: str, message: str, inner: Sequence[tuple[str, str]]) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "code": code,
                             "correlationId": str(uuid.uuid4())}
    current = error
    for inner_code, inner_message in inner:
        nested = {"code": inner_code, "message": inner_message}
        current["innererror"] = nested
        current = nested
    return {"error": error}


def _reply(status: int, body: Mapping[str, Any]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body),
                        content_type="application/json", charset="utf-8",
                        headers={"x-ms-request-id": str(uuid.uuid4())})
