"""KeyVaultSource: the real SecretClient against the Key Vault protocol fake over TLS.

Caching, TTL expiry (on a manual clock), stale values on 429/5xx with a warning, typed
errors naming vault and secret, and `invalidate`. Request counts come from the fake.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError

from sandbox.keyvault import KeyVaultFake
from sandbox.tools import free_port
from shared.secrets.errors import (
    SecretAccessDenied,
    SecretError,
    SecretNotFound,
    SecretsUnavailable,
)
from shared.secrets.keyvault import KeyVaultSource
from shared.secrets.names import InvalidSecretName

Make = Callable[..., KeyVaultSource]
TTL = 600.0


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.name == "shared.secrets.keyvault"]


def test_a_value_is_read_through_challenge_auth(
    key_vault: KeyVaultFake, make_source: Make, credential, leak_guard
) -> None:
    value = leak_guard.value("kubeconfig")
    version = key_vault.set_secret("kubeconfig", value)
    source = make_source()

    secret = source.secret("kubeconfig")

    assert secret.reveal() == value and secret.version == version
    assert secret.source == f"Key Vault {key_vault.url}"
    stats = key_vault.stats()
    assert (stats.requests, stats.challenges, stats.for_secret("kubeconfig")) == (2, 1, 1)
    assert [scopes for scopes, _ in credential.calls] == [("https://vault.azure.net/.default",)]
    assert credential.calls[0][1]["tenant_id"] == key_vault.tenant


def test_cached_values_are_served_without_asking_the_vault(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    value = leak_guard.value("webhook")
    key_vault.set_secret("teams-webhook", value)
    source = make_source()

    assert [source.get(name) for name in ("teams-webhook", "Teams-Webhook", "TEAMS-WEBHOOK")] \
        == [value] * 3
    assert key_vault.stats().for_secret("teams-webhook") == 1


def test_each_secret_is_cached_on_its_own(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    values = {name: leak_guard.value(name) for name in ("a", "b")}
    for name, value in values.items():
        key_vault.set_secret(name, value)
    source = make_source()
    for _ in range(2):
        assert {name: source.get(name) for name in values} == values
    assert key_vault.stats().secret_requests == {"a": 1, "b": 1}


def test_ttl_expiry_refetches_and_picks_up_a_rotated_value(
    key_vault: KeyVaultFake, make_source: Make, clock, leak_guard
) -> None:
    old, new = leak_guard.value("old"), leak_guard.value("new")
    key_vault.set_secret("token", old)
    source = make_source(ttl_seconds=TTL)
    assert source.get("token") == old
    key_vault.set_secret("token", new)

    clock.advance(TTL - 1)
    assert source.get("token") == old
    assert key_vault.stats().for_secret("token") == 1

    clock.advance(1)
    assert source.get("token") == new
    assert key_vault.stats().for_secret("token") == 2
    clock.advance(TTL - 1)
    assert source.get("token") == new
    assert key_vault.stats().for_secret("token") == 2


def test_invalidate_forces_one_refetch(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    old, new = leak_guard.value("old"), leak_guard.value("new")
    key_vault.set_secret("kubeconfig", old)
    source = make_source()
    assert source.get("kubeconfig") == old
    key_vault.set_secret("kubeconfig", new)  # rotated: a consumer's call just got 401
    assert source.get("kubeconfig") == old

    source.invalidate("KubeConfig")

    assert source.get("kubeconfig") == new
    assert source.get("kubeconfig") == new
    assert key_vault.stats().for_secret("kubeconfig") == 2


def test_invalidate_accepts_unknown_names_and_refuses_invalid_ones(make_source: Make) -> None:
    source = make_source()
    source.invalidate("never-read")
    with pytest.raises(InvalidSecretName):
        source.invalidate("not_valid")


@pytest.mark.parametrize(("status", "code"), [
    (429, "Throttled"), (500, "InternalServerError"), (502, "BadGateway"),
    (503, "ServiceUnavailable"), (504, None),
])
def test_a_cached_value_is_served_when_the_refresh_fails_transiently(
    key_vault: KeyVaultFake, make_source: Make, clock, leak_guard, caplog,
    status: int, code: str | None,
) -> None:
    old = leak_guard.value("old")
    key_vault.set_secret("kubeconfig", old)
    source = make_source(ttl_seconds=TTL, stale_retry_seconds=30)
    assert source.get("kubeconfig") == old
    key_vault.set_secret("kubeconfig", leak_guard.value("new"))
    clock.advance(TTL)
    key_vault.inject(status, name="kubeconfig", times=5)

    assert source.get("kubeconfig") == old

    # With a value to fall back on, one attempt only: no retries hold the caller.
    assert key_vault.stats().for_secret("kubeconfig") == 2
    [warning] = warnings_of(caplog)
    assert warning.startswith(f"Key Vault {key_vault.url}: secret 'kubeconfig' could not be "
                              f"refreshed (the vault answered HTTP {status}")
    assert "serving the value cached 600 s ago, next attempt in 30 s" in warning
    if code:
        assert code in warning


def test_after_serving_a_stale_value_the_vault_is_asked_again_after_retry_after(
    key_vault: KeyVaultFake, make_source: Make, clock, leak_guard, caplog
) -> None:
    old, new = leak_guard.value("old"), leak_guard.value("new")
    key_vault.set_secret("kubeconfig", old)
    source = make_source(ttl_seconds=TTL, stale_retry_seconds=30)
    source.get("kubeconfig")
    key_vault.set_secret("kubeconfig", new)
    clock.advance(TTL)
    key_vault.inject(429, name="kubeconfig", retry_after="90")

    assert source.get("kubeconfig") == old
    assert "next attempt in 90 s" in warnings_of(caplog)[0]
    clock.advance(89)
    assert source.get("kubeconfig") == old
    assert key_vault.stats().for_secret("kubeconfig") == 2
    clock.advance(1)
    assert source.get("kubeconfig") == new
    assert key_vault.stats().for_secret("kubeconfig") == 3
    assert len(warnings_of(caplog)) == 1


def test_a_cached_value_is_served_when_the_connection_drops(
    key_vault: KeyVaultFake, make_source: Make, clock, leak_guard, caplog
) -> None:
    old = leak_guard.value("old")
    key_vault.set_secret("kubeconfig", old)
    source = make_source(ttl_seconds=TTL)
    source.get("kubeconfig")
    clock.advance(TTL)
    key_vault.drop_connections(name="kubeconfig", times=5)

    assert source.get("kubeconfig") == old
    assert "could not be reached" in warnings_of(caplog)[0]


def test_without_a_cached_value_transient_failures_are_retried(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    value = leak_guard.value("value")
    key_vault.set_secret("kubeconfig", value)
    key_vault.inject(429, name="kubeconfig", retry_after="0")
    key_vault.inject(503, name="kubeconfig")
    source = make_source()  # two retries

    assert source.get("kubeconfig") == value
    assert key_vault.stats().for_secret("kubeconfig") == 3


def test_without_a_cached_value_persistent_throttling_is_unavailable(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    key_vault.set_secret("kubeconfig", leak_guard.value("value"))
    key_vault.inject(429, name="kubeconfig", retry_after="0", times=10)
    source = make_source()

    with leak_guard.raises(SecretsUnavailable) as info:
        source.get("kubeconfig")

    assert str(info.value) == (f"Key Vault {key_vault.url}: secret 'kubeconfig': the vault "
                               "answered HTTP 429, Throttled")
    assert info.value.retry_after == 0
    assert key_vault.stats().for_secret("kubeconfig") == 3  # one try and two retries


def test_an_unknown_secret_is_not_found(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    key_vault.set_secret("other", leak_guard.value("other"))
    source = make_source()
    source.get("other")
    with leak_guard.raises(SecretNotFound) as info:
        source.get("kubeconfig")
    assert str(info.value) == (f"Key Vault {key_vault.url}: secret 'kubeconfig': not found in "
                               "the vault (HTTP 404)")
    assert (info.value.source, info.value.name) == (f"Key Vault {key_vault.url}", "kubeconfig")


def test_a_deleted_secret_is_not_found_once_its_cache_entry_expires(
    key_vault: KeyVaultFake, make_source: Make, clock, leak_guard
) -> None:
    key_vault.set_secret("kubeconfig", leak_guard.value("value"))
    source = make_source(ttl_seconds=TTL)
    source.get("kubeconfig")
    key_vault.delete_secret("kubeconfig")
    clock.advance(TTL)
    for _ in range(2):  # the stale value is dropped, not served
        with leak_guard.raises(SecretNotFound):
            source.get("kubeconfig")
    assert key_vault.stats().for_secret("kubeconfig") == 3


def test_forbidden_is_access_denied_with_the_role_to_grant(
    key_vault: KeyVaultFake, make_source: Make, clock, leak_guard
) -> None:
    key_vault.set_secret("kubeconfig", leak_guard.value("value"))
    source = make_source(ttl_seconds=TTL)
    source.get("kubeconfig")
    clock.advance(TTL)
    key_vault.inject(403, name="kubeconfig", times=3)

    with leak_guard.raises(SecretAccessDenied) as info:
        source.get("kubeconfig")  # a cached value is not served when access is denied

    assert str(info.value) == (
        f"Key Vault {key_vault.url}: secret 'kubeconfig': access denied (HTTP 403, Forbidden);"
        " the app's identity needs the Key Vault Secrets User role on the vault")
    assert key_vault.stats().for_secret("kubeconfig") == 2  # 403 is not retried


def test_a_disabled_secret_is_access_denied_naming_the_reason(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    key_vault.set_secret("kubeconfig", leak_guard.value("value"))
    key_vault.set_enabled("kubeconfig", False)
    with leak_guard.raises(SecretAccessDenied) as info:
        make_source().get("kubeconfig")
    assert str(info.value).endswith("access denied (HTTP 403, Forbidden/SecretDisabled)")


def test_a_rejected_token_is_access_denied(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    key_vault.set_secret("kubeconfig", leak_guard.value("value"))
    key_vault.accept_tokens(leak_guard.value("some-other-token"))
    with leak_guard.raises(SecretAccessDenied) as info:
        make_source().get("kubeconfig")
    assert str(info.value).endswith("the vault rejected the app's token (HTTP 401, Unauthorized)")


class FailingCredential:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_token(self, *scopes: str, **kwargs: object) -> object:
        raise self.error


@pytest.mark.parametrize("error", [
    CredentialUnavailableError("ManagedIdentityCredential: no managed identity endpoint found"),
    ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token"),
])
def test_a_credential_that_gets_no_token_makes_the_vault_unavailable(
    key_vault: KeyVaultFake, make_source: Make, leak_guard, error: Exception
) -> None:
    key_vault.set_secret("kubeconfig", leak_guard.value("value"))
    source = make_source(token_credential=FailingCredential(error))
    with leak_guard.raises(SecretsUnavailable) as info:
        source.get("kubeconfig")
    assert str(info.value).startswith(f"Key Vault {key_vault.url}: secret 'kubeconfig': could not"
                                      f" get a token for the vault: {type(error).__name__}: ")


def test_an_unreachable_vault_is_unavailable(make_source: Make, leak_guard) -> None:
    source = make_source(vault_url=f"https://127.0.0.1:{free_port()}")
    with leak_guard.raises(SecretsUnavailable) as info:
        source.get("kubeconfig")
    assert "secret 'kubeconfig': the vault could not be reached: ServiceRequestError" \
        in str(info.value)


def test_other_refusals_are_plain_secret_errors(
    key_vault: KeyVaultFake, make_source: Make, clock, leak_guard
) -> None:
    key_vault.set_secret("kubeconfig", leak_guard.value("value"))
    source = make_source(ttl_seconds=TTL)
    source.get("kubeconfig")
    clock.advance(TTL)
    key_vault.inject(400, name="kubeconfig")
    with leak_guard.raises(SecretError) as info:
        source.get("kubeconfig")
    assert type(info.value) is SecretError
    assert str(info.value).endswith("the vault refused the request (HTTP 400, BadParameter)")


def test_invalid_names_are_refused_before_any_request(
    key_vault: KeyVaultFake, make_source: Make
) -> None:
    with pytest.raises(InvalidSecretName, match="^secret name: 'qa/kubeconfig' contains '/'"):
        make_source().get("qa/kubeconfig")
    assert key_vault.stats().requests == 0


def test_concurrent_first_reads_of_one_secret_make_one_request(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    value = leak_guard.value("value")
    key_vault.set_secret("kubeconfig", value)
    source = make_source()
    results: list[str] = []
    start = threading.Barrier(8)

    def read() -> None:
        start.wait()
        results.append(source.get("kubeconfig"))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [value] * 8
    assert key_vault.stats().for_secret("kubeconfig") == 1


def test_text_forms_of_source_and_secret_show_no_value(
    key_vault: KeyVaultFake, make_source: Make, leak_guard
) -> None:
    value = leak_guard.value("value")
    key_vault.set_secret("kubeconfig", value)
    source = make_source()
    secret = source.secret("kubeconfig")
    for text in (repr(source), str(secret), repr(secret), f"{secret}", repr([secret])):
        assert value not in text
    assert repr(source) == f"<KeyVaultSource Key Vault {key_vault.url}>"
