"""Fixtures for the secrets tests: a Key Vault protocol fake, a static-token credential,
a manual clock, and a guard that fails any test whose logs or checked exceptions show a
secret value.

Every secret value a test uses comes from `leak_guard.value(...)`, so the guard knows it.
The guard records every log record of every logger at DEBUG (the Azure SDK's included)
for the whole test and checks them afterwards; `leak_guard.raises(...)` is `pytest.raises`
that also checks the exception, its causes and its traceback text; `telemetry_leaks(...)`
finds the values in what the app's telemetry exported (the SDK's in-memory exporters).
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from sandbox.keyvault import KeyVaultFake
from sandbox.tls import TlsFiles
from shared.secrets import sources
from shared.secrets.keyvault import KeyVaultRetry, KeyVaultSource
from shared.telemetry.pipelines import InMemory

# No sleeping in tests: Retry-After "0" and a zero backoff keep SDK retries instant.
FAST_RETRY = KeyVaultRetry(total=2, backoff_factor=0.0, backoff_max=0,
                           connection_timeout=2.0, read_timeout=5.0)


class LeakGuard:
    """Knows the secret values of one test and finds them in log records and exceptions."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.records: list[logging.LogRecord] = []

    def value(self, label: str) -> str:
        """A fresh, recognisable secret value, registered with the guard."""
        value = f"{label}-{uuid.uuid4().hex}"
        self.values.add(value)
        return value

    def leaks(self) -> list[str]:
        """Texts (log messages with their tracebacks) that contain a known secret value."""
        found = []
        for record in self.records:
            text = record.getMessage()
            if record.exc_info:
                text += "".join(traceback.format_exception(*record.exc_info))
            if any(value in text for value in self.values):
                found.append(f"{record.name}: {text[:200]}")
        return found

    def check_exception(self, error: BaseException) -> None:
        """Fail if the exception, any cause or context, or its traceback shows a value."""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            text = f"{current}\n{current!r}\n" + "".join(traceback.format_exception(current))
            for value in self.values:
                assert value not in text, f"{type(current).__name__} shows a secret value"
            current = current.__cause__ or current.__context__

    def telemetry_leaks(self, memory: InMemory) -> list[str]:
        """What the app exported (span names and attributes, metric attributes, log bodies
        and attributes) that contains a known secret value."""
        texts = [f"span {span.name}: {dict(span.attributes or {})}"
                 for span in memory.spans.get_finished_spans()]
        data = memory.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                texts += [f"metric {metric.name}: {dict(point.attributes or {})}"
                          for metric in scope.metrics for point in metric.data.data_points]
        texts += [f"log {log.log_record.body}: {dict(log.log_record.attributes or {})}"
                  for log in memory.logs.get_finished_logs()]
        return [text[:200] for text in texts if any(value in text for value in self.values)]

    @contextmanager
    def raises(self, expected: type[BaseException], **kwargs: Any) -> Iterator[Any]:
        """`pytest.raises` that also checks the exception with `check_exception`."""
        with pytest.raises(expected, **kwargs) as info:
            yield info
        self.check_exception(info.value)


class _Recorder(logging.Handler):
    def __init__(self, guard: LeakGuard) -> None:
        super().__init__(logging.DEBUG)
        self.guard = guard

    def emit(self, record: logging.LogRecord) -> None:
        self.guard.records.append(record)


@pytest.fixture(autouse=True)
def leak_guard() -> Iterator[LeakGuard]:
    """Records all logging at DEBUG during the test; fails it if a secret value shows."""
    guard = LeakGuard()
    handler = _Recorder(guard)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield guard
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    leaks = guard.leaks()
    assert not leaks, f"secret values in logs: {leaks}"


class StaticTokenCredential:
    """A TokenCredential that hands out one token and records what it was asked for."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append((scopes, kwargs))
        return AccessToken(self.token, int(time.time()) + 3600)


class ManualClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def vault_token(leak_guard: LeakGuard) -> str:
    """The bearer token the fake accepts; registered as a secret (it must not be logged)."""
    return leak_guard.value("bearer-token")


@pytest.fixture
def key_vault(tls_files: TlsFiles, vault_token: str) -> Iterator[KeyVaultFake]:
    """A fresh Key Vault fake over TLS on a free port, accepting `vault_token`."""
    with KeyVaultFake(tls_files, token=vault_token) as fake:
        yield fake


@pytest.fixture
def credential(vault_token: str) -> StaticTokenCredential:
    return StaticTokenCredential(vault_token)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_source(
    key_vault: KeyVaultFake, credential: StaticTokenCredential, clock: ManualClock,
    tls_files: TlsFiles,
) -> Iterator[Callable[..., KeyVaultSource]]:
    """`make_source(vault_url=None, token_credential=None, **options)`: a KeyVaultSource on
    the fake (or `vault_url`) with fast retries, the test's clock and its CA."""
    created: list[KeyVaultSource] = []

    def make(vault_url: str | None = None, token_credential: Any = None,
             **overrides: Any) -> KeyVaultSource:
        options = {"ca_bundle": str(tls_files.ca), "retry": FAST_RETRY, "clock": clock,
                   **overrides}
        source = KeyVaultSource(vault_url or key_vault.url, token_credential or credential,
                                **options)
        created.append(source)
        return source

    yield make
    for source in created:
        source.close()


@pytest.fixture(autouse=True)
def fresh_sources() -> Iterator[None]:
    """Each test starts without the process-wide sources of `for_spec`."""
    sources.clear_sources()
    yield
    sources.clear_sources()
