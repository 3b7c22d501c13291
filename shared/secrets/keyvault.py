"""Secrets from one Azure Key Vault through `azure-keyvault-secrets`, cached in memory.

One `SecretClient` per source; `sources.for_spec` keeps one source per vault and identity
per process. Values are cached for `ttl_seconds` (case-insensitive names share an entry).
When a refresh meets 429, 5xx, a network failure or a token failure and a cached value
exists, that value is served and a warning logged (never the value); the vault is asked
again after the server's Retry-After or `stale_retry_seconds`. Without a cached value
the SDK's bounded retries apply (429 with Retry-After, 5xx, connection resets) before
`SecretsUnavailable` is raised. 404 and 401/403 drop any cached value and raise.

The SDK authenticates by challenge (see `sandbox/keyvault.py` for the protocol) and, by
default, requires the challenge's resource domain to be a parent domain of the vault's
host; that check cannot pass for a loopback vault (the local protocol fake), so it is
turned off for loopback hosts only.

The SDK's HTTP logging policy logs headers (with `Authorization` redacted), never bodies;
bodies would only be logged with `logging_enable=True`, which this module never passes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient

from .base import SecretSource
from .errors import Secret, SecretAccessDenied, SecretError, SecretNotFound, SecretsUnavailable
from .names import cache_key, check_secret_name, is_loopback_url, normalize_vault_url

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 600.0
STALE_RETRY_SECONDS = 30.0
_TRANSIENT_STATUS = {408, 429}
_DETAIL_LIMIT = 300


@dataclass(frozen=True)
class KeyVaultRetry:
    """Bounded retries and timeouts for one vault (azure-core RetryPolicy settings)."""

    total: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 8.0
    connection_timeout: float = 10.0
    read_timeout: float = 30.0

    def client_kwargs(self) -> dict[str, Any]:
        return {"retry_total": self.total, "retry_connect": self.total,
                "retry_read": self.total, "retry_status": self.total,
                "retry_backoff_factor": self.backoff_factor,
                "retry_backoff_max": self.backoff_max,
                "connection_timeout": self.connection_timeout,
                "read_timeout": self.read_timeout}


@dataclass
class _Entry:
    secret: Secret
    fetched_at: float
    expires_at: float


class KeyVaultSource(SecretSource):
    """Reads, caches and refreshes the secrets of one vault. Thread-safe."""

    def __init__(
        self,
        vault_url: str,
        credential: TokenCredential,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        stale_retry_seconds: float = STALE_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        retry: KeyVaultRetry | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        """`ca_bundle` trusts a private CA (local stacks only); `clock` is for tests."""
        self.vault_url = normalize_vault_url(vault_url, "vault_url")
        self.description = f"Key Vault {self.vault_url}"
        self.ttl_seconds = ttl_seconds
        self.stale_retry_seconds = stale_retry_seconds
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._client = SecretClient(
            self.vault_url,
            credential,
            verify_challenge_resource=not is_loopback_url(self.vault_url),
            connection_verify=ca_bundle or True,
            **(retry or KeyVaultRetry()).client_kwargs(),
        )

    def secret(self, name: str) -> Secret:
        check_secret_name(name)
        key = cache_key(name)
        with self._lock_for(key):
            entry = self._cache.get(key)
            if entry is not None and self._clock() < entry.expires_at:
                return entry.secret
            try:
                secret = self._fetch(name, have_fallback=entry is not None)
            except SecretsUnavailable as error:
                if entry is None:
                    raise
                return self._serve_stale(key, entry, error)
            except SecretError:
                self._cache.pop(key, None)
                raise
            now = self._clock()
            self._cache[key] = _Entry(secret, now, now + self.ttl_seconds)
            return secret

    def invalidate(self, name: str) -> None:
        check_secret_name(name)
        key = cache_key(name)
        with self._lock_for(key):
            self._cache.pop(key, None)

    def close(self) -> None:
        """Close the client's connections (the source is unusable afterwards)."""
        self._client.close()

    def _fetch(self, name: str, have_fallback: bool) -> Secret:
        # With a cached value to fall back on, one attempt: don't hold the caller in retries.
        options: dict[str, Any] = {"retry_total": 0} if have_fallback else {}
        try:
            bundle = self._client.get_secret(name, **options)
        except ValueError as error:  # the SDK refusing the vault's authentication challenge
            raise SecretError(self.description, name, "the vault's authentication challenge "
                              f"was refused: {_detail(error)}") from error
        except AzureError as error:
            raise self._classify(name, error) from error
        if bundle.value is None:
            raise SecretNotFound(self.description, name, "the secret has no value")
        return Secret(name, bundle.value, self.description, bundle.properties.version)

    def _classify(self, name: str, error: AzureError) -> SecretError:
        where = self.description
        if isinstance(error, ResourceNotFoundError):
            return SecretNotFound(where, name, "not found in the vault (HTTP 404)")
        if isinstance(error, ClientAuthenticationError) and error.response is None:
            return SecretsUnavailable(where, name, "could not get a token for the vault: "
                                      f"{type(error).__name__}: {_detail(error)}")
        if isinstance(error, HttpResponseError) and error.status_code is not None:
            status = error.status_code
            code = _service_code(error)
            if status == 401:
                return SecretAccessDenied(where, name, f"the vault rejected the app's token"
                                          f" (HTTP 401{code})")
            if status == 403:
                hint = "" if "Disabled" in code else (
                    "; the app's identity needs the Key Vault Secrets User role on the vault")
                return SecretAccessDenied(where, name, f"access denied (HTTP 403{code}){hint}")
            if status in _TRANSIENT_STATUS or status >= 500:
                return SecretsUnavailable(where, name, f"the vault answered HTTP {status}{code}",
                                          retry_after=_retry_after(error))
            return SecretError(where, name, f"the vault refused the request (HTTP {status}{code})")
        if isinstance(error, ServiceRequestError | ServiceResponseError):
            return SecretsUnavailable(where, name, "the vault could not be reached: "
                                      f"{type(error).__name__}: {_detail(error)}")
        return SecretsUnavailable(where, name, f"{type(error).__name__}: {_detail(error)}")

    def _serve_stale(self, key: str, entry: _Entry, error: SecretsUnavailable) -> Secret:
        now = self._clock()
        pause = self.stale_retry_seconds if error.retry_after is None else error.retry_after
        pause = max(0.0, min(pause, self.ttl_seconds))
        self._cache[key] = _Entry(entry.secret, entry.fetched_at, now + pause)
        log.warning(
            "%s: secret %r could not be refreshed (%s); serving the value cached %.0f s ago,"
            " next attempt in %.0f s", self.description, entry.secret.name, error.reason,
            now - entry.fetched_at, pause,
        )
        return entry.secret

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())


def _service_code(error: HttpResponseError) -> str:
    """`, Throttled` or `, Forbidden/SecretDisabled` from the service's error body, or ''."""
    body = getattr(error, "error", None)
    code = getattr(body, "code", None)
    inner = getattr(body, "innererror", None) or {}
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    codes = "/".join(str(part) for part in (code, inner_code) if part)
    return f", {codes}" if codes else ""


def _retry_after(error: HttpResponseError) -> float | None:
    """Seconds of the response's Retry-After header, when it is a number."""
    response = getattr(error, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _detail(error: BaseException) -> str:
    """One line of an SDK error's message, cut short."""
    text = " ".join(str(error).split())
    return text if len(text) <= _DETAIL_LIMIT else text[:_DETAIL_LIMIT] + "…"
