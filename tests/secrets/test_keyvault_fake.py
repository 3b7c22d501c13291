"""The Key Vault protocol fake, driven by the real SecretClient (and raw HTTPS where the SDK
would hide what is on the wire). Also pins down what azure-keyvault-secrets' challenge
authentication does, since the app's Key Vault source relies on it.
"""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from sandbox.keyvault import KeyVaultFake
from sandbox.tls import TlsFiles


@pytest.fixture
def client(key_vault: KeyVaultFake, credential, tls_files: TlsFiles) -> SecretClient:
    return SecretClient(key_vault.url, credential, verify_challenge_resource=False,
                        connection_verify=str(tls_files.ca), retry_total=0)


def test_the_sdk_answers_the_challenge_once_then_reuses_its_token(
    key_vault: KeyVaultFake, client: SecretClient, credential, leak_guard
) -> None:
    values = [leak_guard.value("a"), leak_guard.value("b")]
    key_vault.set_secret("a", values[0])
    key_vault.set_secret("b", values[1])

    assert [client.get_secret(n).value for n in ("a", "b", "a")] == [values[0], values[1],
                                                                     values[0]]

    stats = key_vault.stats()
    # first request unauthenticated -> 401 challenge -> same request with the bearer token
    assert (stats.requests, stats.challenges) == (4, 1)
    assert stats.secret_requests == {"a": 2, "b": 1}
    assert stats.api_versions == (client.api_version,) * 3
    # the token is asked for the challenge's resource as an AADv2 scope, in its tenant
    [(scopes, options)] = credential.calls
    assert scopes == ("https://vault.azure.net/.default",)
    assert options["tenant_id"] == key_vault.tenant
    assert options["enable_cae"] is True


def test_the_sdk_refuses_a_challenge_resource_outside_the_vaults_domain_by_default(
    tls_files: TlsFiles, credential, vault_token: str, leak_guard
) -> None:
    # A fresh fake: the SDK's challenge cache is process-wide, keyed by host and port.
    with KeyVaultFake(tls_files, token=vault_token) as fake:
        fake.set_secret("a", leak_guard.value("a"))
        strict = SecretClient(fake.url, credential, connection_verify=str(tls_files.ca))
        with pytest.raises(ValueError, match="challenge resource 'vault.azure.net' does not "
                                             "match the requested domain"):
            strict.get_secret("a")
        assert credential.calls == []  # no token was requested for the mismatched resource
        relaxed = SecretClient(fake.url, credential, verify_challenge_resource=False,
                               connection_verify=str(tls_files.ca))
        assert relaxed.get_secret("a").name == "a"


def test_a_rejected_token_gets_a_fresh_challenge(
    key_vault: KeyVaultFake, leak_guard, tls_files: TlsFiles
) -> None:
    key_vault.set_secret("a", leak_guard.value("a"))
    wrong = leak_guard.value("wrong-token")
    response = requests.get(f"{key_vault.url}/secrets/a?api-version=7.6",
                            headers={"Authorization": f"Bearer {wrong}"},
                            verify=str(tls_files.ca), timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{key_vault.tenant}", '
        'resource="https://vault.azure.net"')
    assert response.json()["error"]["code"] == "Unauthorized"


def test_versions(key_vault: KeyVaultFake, client: SecretClient, leak_guard) -> None:
    first, second = leak_guard.value("v1"), leak_guard.value("v2")
    v1 = key_vault.set_secret("kubeconfig", first)
    v2 = key_vault.set_secret("kubeconfig", second, content_type="application/yaml",
                              tags={"env": "qa"})

    latest = client.get_secret("KubeConfig")
    assert (latest.value, latest.properties.version, latest.name) == (second, v2, "kubeconfig")
    assert latest.properties.content_type == "application/yaml"
    assert latest.properties.tags == {"env": "qa"}
    assert latest.properties.enabled is True
    assert latest.id == f"{key_vault.url}/secrets/kubeconfig/{v2}"
    assert client.get_secret("kubeconfig", v1).value == first
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_secret("kubeconfig", "0" * 32)
    assert info.value.error.code == "SecretNotFound"


def test_errors_have_key_vaults_shape(
    key_vault: KeyVaultFake, client: SecretClient, leak_guard
) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret("missing")
    assert missing.value.error.code == "SecretNotFound"
    assert "missing" in missing.value.error.message

    key_vault.set_secret("off", leak_guard.value("off"))
    key_vault.set_enabled("off", False)
    with pytest.raises(HttpResponseError) as disabled:
        client.get_secret("off")
    assert disabled.value.status_code == 403
    assert disabled.value.error.innererror == {"code": "SecretDisabled"}


def test_faults_hit_only_their_secret_and_carry_retry_after(
    key_vault: KeyVaultFake, client: SecretClient, leak_guard
) -> None:
    key_vault.set_secret("a", leak_guard.value("a"))
    key_vault.set_secret("b", leak_guard.value("b"))
    key_vault.inject(429, name="a", retry_after="7", times=2)
    key_vault.inject(503, name="b")

    for name, status, code in (("a", 429, "Throttled"), ("a", 429, "Throttled"),
                               ("b", 503, "ServiceUnavailable")):
        with pytest.raises(HttpResponseError) as info:
            client.get_secret(name)
        assert (info.value.status_code, info.value.error.code) == (status, code)
        if status == 429:
            assert info.value.response.headers["Retry-After"] == "7"
    assert client.get_secret("a").value and client.get_secret("b").value
    assert key_vault.stats().injected == 3


def test_the_sdk_retries_a_dropped_connection(
    key_vault: KeyVaultFake, credential, tls_files: TlsFiles, leak_guard
) -> None:
    value = leak_guard.value("a")
    key_vault.set_secret("a", value)
    key_vault.drop_connections(name="a")
    client = SecretClient(key_vault.url, credential, verify_challenge_resource=False,
                          connection_verify=str(tls_files.ca), retry_total=2,
                          retry_backoff_factor=0)
    assert client.get_secret("a").value == value
    assert key_vault.stats().dropped == 1


def test_raw_requests_need_an_api_version_and_a_valid_name(
    key_vault: KeyVaultFake, vault_token: str, tls_files: TlsFiles, leak_guard
) -> None:
    key_vault.set_secret("a", leak_guard.value("a"))
    headers = {"Authorization": f"Bearer {vault_token}"}

    def get(path: str) -> requests.Response:
        return requests.get(f"{key_vault.url}{path}", headers=headers,
                            verify=str(tls_files.ca), timeout=5)

    assert get("/secrets/a").json()["error"]["code"] == "MissingApiVersionParameter"
    assert get("/secrets/a_b?api-version=7.6").status_code == 400
    assert get("/keys/a?api-version=7.6").status_code == 404
    assert get("/secrets/a/?api-version=7.6").status_code == 200


def test_reset_forgets_faults_and_counts(key_vault: KeyVaultFake, client: SecretClient,
                                         leak_guard) -> None:
    key_vault.set_secret("a", leak_guard.value("a"))
    client.get_secret("a")
    key_vault.inject(500, times=3)
    key_vault.reset()
    assert key_vault.stats().requests == 0
    assert client.get_secret("a").value
    assert key_vault.stats().injected == 0


def test_set_secret_refuses_names_key_vault_would_refuse(key_vault: KeyVaultFake) -> None:
    with pytest.raises(ValueError, match="not a valid Key Vault secret name"):
        key_vault.set_secret("qa/kubeconfig", "x")
