"""A Key Vault protocol fake over TLS: the secrets data plane, challenge auth, faults, counts.

Speaks what `azure-keyvault-secrets` sends and expects, at the HTTP level:

- challenge authentication: a request without `Authorization: Bearer <token>` (or with a
  token the fake does not accept) gets 401 with
  `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  resource="https://vault.azure.net"`; the client then gets a token for that resource's
  `/.default` scope in that tenant and repeats the request with it;
- `GET /secrets/{name}[/{version}]?api-version=…` answering
  `{"value", "id", "attributes", "tags"}` (names case-insensitive, latest version when
  none is given), 404 `{"error": {"code": "SecretNotFound", …}}` for an unknown name or
  version, 403 `Forbidden/SecretDisabled` for a disabled secret, 400 without `api-version`;
- faults on demand: the next N authenticated requests (for one secret or any) answered with
  403, 429 (with `Retry-After`), 5xx or a dropped connection.

Runs its own asyncio loop in a background thread (like `faults.py`), so synchronous tests
and the synchronous SDK can use it. Only secrets are served; keys, certificates, listing
and writes are not (the app only reads). Values live in memory and are never logged.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from aiohttp import web

from sandbox.threaded import ThreadedServer
from sandbox.tls import TlsFiles

DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DEFAULT_TOKEN = "sandbox-key-vault-token"
RESOURCE = "https://vault.azure.net"
_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_ERRORS = {
    400: ("BadParameter", "The request is invalid."),
    403: ("Forbidden", "Caller is not authorized to perform action on resource. "
                       "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'"),
    429: ("Throttled", "Request was not processed because too many requests were received. "
                       "Reason: VaultRequestTypeLimitReached"),
    500: ("InternalServerError", "An internal error occurred (injected by KeyVaultFake)."),
    502: ("BadGateway", "Bad gateway (injected by KeyVaultFake)."),
    503: ("ServiceUnavailable", "The service is unavailable (injected by KeyVaultFake)."),
}


@dataclass(frozen=True)
class KeyVaultStats:
    """What the fake saw since the last reset.

    `requests` counts every request (challenges included); `challenges` the 401s it sent;
    `secret_requests` the authenticated requests per lower-cased secret name (injected
    faults included); `api_versions` the `api-version` values sent.
    """

    requests: int = 0
    challenges: int = 0
    injected: int = 0
    dropped: int = 0
    secret_requests: dict[str, int] = field(default_factory=dict)
    api_versions: tuple[str, ...] = ()

    def for_secret(self, name: str) -> int:
        return self.secret_requests.get(name.lower(), 0)


@dataclass
class _Version:
    id: str
    value: str
    enabled: bool
    created: int
    content_type: str | None
    tags: dict[str, str]


@dataclass
class _Fault:
    remaining: int
    status: int | None  # None: drop the connection
    name: str | None
    retry_after: str | None
    code: str | None

    def matches(self, name: str | None) -> bool:
        return self.remaining > 0 and (self.name is None or self.name == name)


class KeyVaultFake(ThreadedServer):
    """One vault's secrets data plane on `https://127.0.0.1:PORT`."""

    thread_name = "key-vault-fake"

    def __init__(
        self,
        tls: TlsFiles,
        port: int = 0,
        *,
        tenant: str = DEFAULT_TENANT,
        token: str = DEFAULT_TOKEN,
        resource: str = RESOURCE,
    ) -> None:
        super().__init__()
        self.tls = tls
        self.port = port
        self.tenant = tenant
        self.resource = resource
        self._tokens = {token}
        self._lock = threading.Lock()
        self._secrets: dict[str, list[_Version]] = {}
        self._faults: list[_Fault] = []
        self._counts: Counter[str] = Counter()
        self._per_secret: Counter[str] = Counter()
        self._api_versions: list[str] = []

    @property
    def url(self) -> str:
        """The vault URL, `https://127.0.0.1:PORT`."""
        return f"https://127.0.0.1:{self.port}"


    # -- the vault's content -------------------------------------------------------------

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        enabled: bool = True,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Add a new version of `name` (it becomes the latest); returns the version id."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid Key Vault secret name")
        version = _Version(uuid.uuid4().hex, value, enabled, int(time.time()), content_type,
                           dict(tags or {}))
        with self._lock:
            self._secrets.setdefault(name.lower(), []).append(version)
        return version.id

    def set_enabled(self, name: str, enabled: bool, version: str | None = None) -> None:
        """Enable or disable the latest (or the given) version of `name`."""
        with self._lock:
            versions = self._secrets[name.lower()]
            target = versions[-1] if version is None else next(
                v for v in versions if v.id == version)
            target.enabled = enabled

    def delete_secret(self, name: str) -> None:
        """Remove `name` and all its versions."""
        with self._lock:
            self._secrets.pop(name.lower(), None)

    def accept_tokens(self, *tokens: str) -> None:
        """Accept exactly these bearer tokens from now on (others get a challenge)."""
        with self._lock:
            self._tokens = set(tokens)

    # -- faults and statistics ----------------------------------------------------------

    def inject(
        self,
        status: int,
        *,
        times: int = 1,
        name: str | None = None,
        retry_after: str | None = None,
        code: str | None = None,
    ) -> None:
        """Answer the next `times` authenticated requests (for `name`, or any) with `status`.

        The body is Key Vault's error shape with a fitting code (`code` overrides it);
        `retry_after` sets the `Retry-After` header (the SDK waits that long before retrying).
        """
        with self._lock:
            self._faults.append(_Fault(times, status, name and name.lower(), retry_after, code))

    def drop_connections(self, times: int = 1, *, name: str | None = None) -> None:
        """Close the connection of the next `times` authenticated requests without answering."""
        with self._lock:
            self._faults.append(_Fault(times, None, name and name.lower(), None, None))

    def stats(self) -> KeyVaultStats:
        with self._lock:
            return KeyVaultStats(
                requests=self._counts["requests"], challenges=self._counts["challenges"],
                injected=self._counts["injected"], dropped=self._counts["dropped"],
                secret_requests=dict(self._per_secret),
                api_versions=tuple(self._api_versions),
            )

    def reset(self) -> None:
        """Forget pending faults and zero the statistics (secrets and tokens stay)."""
        with self._lock:
            self._faults.clear()
            self._counts.clear()
            self._per_secret.clear()
            self._api_versions.clear()

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        with self._lock:
            self._counts["requests"] += 1
            authorized = request.headers.get("Authorization", "") in {
                f"Bearer {token}" for token in self._tokens}
        if not authorized:
            return self._challenge("Authorization" in request.headers)
        query = parse_qs(request.rel_url.raw_query_string)
        api_version = (query.get("api-version") or [None])[0]
        match = re.fullmatch(r"/secrets/([^/]+)(?:/([^/]*))?/?", request.rel_url.raw_path)
        name = unquote(match.group(1)).lower() if match else None
        fault = self._take_fault(name)
        if fault is not None and fault.status is None:
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # aiohttp ends the handler without writing a response
        if fault is not None and fault.status is not None:
            return _error(fault.status, fault.code, retry_after=fault.retry_after)
        if api_version is None:
            return _error(400, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required.")
        with self._lock:
            self._api_versions.append(api_version)
        if match is None or request.method != "GET":
            return _error(405 if match else 404, "NotSupported" if match else "NotFound",
                          "KeyVaultFake serves only GET /secrets/{name}[/{version}].")
        if not _NAME.fullmatch(name or ""):
            return _error(400, "BadParameter", "The secret name is not valid.")
        return self._get_secret(name or "", unquote(match.group(2) or ""), request)

    def _get_secret(self, name: str, version: str, request: web.BaseRequest) -> web.Response:
        with self._lock:
            versions = list(self._secrets.get(name, ()))
        found = versions[-1] if versions and not version else next(
            (v for v in versions if v.id == version), None)
        if found is None:
            shown = f"{name}/{version}" if version else name
            return _error(404, "SecretNotFound", f"A secret with (name/id) {shown} was not found "
                                                 "in this key vault.")
        if not found.enabled:
            return _error(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                          inner="SecretDisabled")
        base = f"https://{request.host}"
        body = {
            "value": found.value,
            "id": f"{base}/secrets/{name}/{found.id}",
            "attributes": {"enabled": True, "created": found.created, "updated": found.created,
                           "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
            "tags": found.tags,
        }
        if found.content_type:
            body["contentType"] = found.content_type
        return web.Response(text=json.dumps(body), content_type="application/json",
                            headers=_service_headers())

    def _challenge(self, had_token: bool) -> web.Response:
        with self._lock:
            self._counts["challenges"] += 1
        message = ("AKV10032: Invalid issuer or token." if had_token
                   else "AKV10000: Request is missing a Bearer or PoP token.")
        response = _error(401, "Unauthorized", message)
        response.headers["WWW-Authenticate"] = (
            f'Bearer authorization="https://login.microsoftonline.com/{self.tenant}", '
            f'resource="{self.resource}"')
        return response

    def _take_fault(self, name: str | None) -> _Fault | None:
        with self._lock:
            if name is not None:
                self._per_secret[name] += 1
            fault = next((f for f in self._faults if f.matches(name)), None)
            if fault is not None:
                fault.remaining -= 1
                self._counts["injected" if fault.status else "dropped"] += 1
                self._faults = [f for f in self._faults if f.remaining > 0]
            return fault


def _error(
    status: int,
    code: str | None = None,
    message: str | None = None,
    *,
    retry_after: str | None = None,
    inner: str | None = None,
) -> web.Response:
    default_code, default_message = _ERRORS.get(status, ("Error", f"HTTP {status}"))
    error: dict[str, object] = {"code": code or default_code, "message": message or default_message}
    if inner:
        error["innererror"] = {"code": inner}
    headers = _service_headers()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return web.Response(status=status, text=json.dumps({"error": error}),
                        content_type="application/json", headers=headers)


def _service_headers() -> dict[str, str]:
    return {"x-ms-request-id": str(uuid.uuid4()), "x-ms-keyvault-service-version": "sandbox",
            "x-ms-keyvault-region": "local"}
