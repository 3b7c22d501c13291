"""Secrets specs from the release policy, the process-wide sources, and the Secret wrapper."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from sandbox.keyvault import KeyVaultFake
from sandbox.tls import TlsFiles
from shared.secrets import sources
from shared.secrets.errors import InvalidSecretSpec, Secret
from shared.secrets.keyvault import KeyVaultSource
from shared.secrets.local import LocalSource
from shared.secrets.sources import KeyVaultSpec, LocalSpec, for_spec, parse_spec

CLIENT_ID = "0b7c6e8e-3c35-4a43-9d2e-6f1c2b8a9d10"


@pytest.mark.parametrize(("spec", "parsed"), [
    ({"keyVault": {"url": "https://qa-kv.vault.azure.net", "managedIdentityClientId": None}},
     KeyVaultSpec("https://qa-kv.vault.azure.net")),
    ({"keyVault": {"url": "https://QA-kv.vault.azure.net/"}},
     KeyVaultSpec("https://qa-kv.vault.azure.net")),
    ({"keyVault": {"url": "https://prod-kv.vault.azure.net",
                   "managedIdentityClientId": CLIENT_ID.upper()}},
     KeyVaultSpec("https://prod-kv.vault.azure.net", CLIENT_ID)),
    ({"keyVault": {"url": "https://127.0.0.1:8443", "caBundle": "/tmp/ca.pem"}},
     KeyVaultSpec("https://127.0.0.1:8443", None, "/tmp/ca.pem")),
    ({"local": {"environment": "qa"}}, LocalSpec("qa")),
])
def test_specs_parse(spec: dict, parsed: object) -> None:
    assert parse_spec(spec) == parsed
    assert parse_spec(parsed.to_dict()) == parsed  # the policy snapshot round-trips


@pytest.mark.parametrize(("spec", "field", "reason"), [
    ([], "secrets", "must be an object"),
    ({}, "secrets", "exactly one of 'keyVault' or 'local'"),
    ({"keyVault": {"url": "https://a.vault.azure.net"}, "local": {"environment": "qa"}},
     "secrets", "exactly one of"),
    ({"vault": {}}, "secrets.vault", "unknown field"),
    ({"keyVault": "https://qa-kv.vault.azure.net"}, "secrets.keyVault", "must be an object"),
    ({"keyVault": {}}, "secrets.keyVault.url", "must be the vault's URL"),
    ({"keyVault": {"url": "http://qa-kv.vault.azure.net"}}, "secrets.keyVault.url",
     "must be an https URL"),
    ({"keyVault": {"url": "https://qa-kv.vault.azure.net/secrets"}}, "secrets.keyVault.url",
     "no path"),
    ({"keyVault": {"url": "https://qa-kv.vault.azure.net", "managedIdentityClientId": "me"}},
     "secrets.keyVault.managedIdentityClientId", "GUID"),
    ({"keyVault": {"url": "https://qa-kv.vault.azure.net", "caBundle": ""}},
     "secrets.keyVault.caBundle", "path of a CA file"),
    ({"keyVault": {"url": "https://qa-kv.vault.azure.net", "tenant": "x"}},
     "secrets.keyVault.tenant", "unknown field"),
    ({"local": {}}, "secrets.local.environment", "must be a string"),
    ({"local": {"environment": "qa_1"}}, "secrets.local.environment",
     "not a valid environment name"),
    ({"local": {"environment": "qa", "prefix": "X"}}, "secrets.local.prefix", "unknown field"),
])
def test_bad_specs_name_the_field(spec: object, field: str, reason: str) -> None:
    with pytest.raises(InvalidSecretSpec) as info:
        parse_spec(spec)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)


def test_the_caller_names_where_the_spec_sits() -> None:
    with pytest.raises(InvalidSecretSpec, match=r"^environments\[1\]\.secrets\.local\."
                                                r"environment: "):
        parse_spec({"local": {"environment": ""}}, "environments[1].secrets")


def test_for_spec_keeps_one_source_per_vault_and_identity() -> None:
    qa = {"keyVault": {"url": "https://qa-kv.vault.azure.net", "managedIdentityClientId": None}}
    source = for_spec(qa)
    assert isinstance(source, KeyVaultSource)
    assert source.vault_url == "https://qa-kv.vault.azure.net"
    assert for_spec(copy.deepcopy(qa)) is source
    assert for_spec({"keyVault": {"url": "https://QA-KV.vault.azure.net/"}}) is source
    assert for_spec(KeyVaultSpec("https://qa-kv.vault.azure.net")) is source
    other = for_spec({"keyVault": {"url": "https://qa-kv.vault.azure.net",
                                   "managedIdentityClientId": CLIENT_ID}})
    assert other is not source
    assert for_spec({"keyVault": {"url": "https://prod-kv.vault.azure.net"}}) is not source


def test_for_spec_local() -> None:
    source = for_spec({"local": {"environment": "qa"}})
    assert isinstance(source, LocalSource)
    assert source.environment == "qa"
    assert for_spec({"local": {"environment": "qa"}}) is source
    assert for_spec({"local": {"environment": "prod"}}) is not source


def test_for_spec_refuses_a_bad_spec() -> None:
    with pytest.raises(InvalidSecretSpec, match=r"^secrets: "):
        for_spec({})


def test_a_key_vault_spec_reads_its_vault(
    monkeypatch: pytest.MonkeyPatch, key_vault: KeyVaultFake, tls_files: TlsFiles, credential,
    leak_guard,
) -> None:
    # DefaultAzureCredential would try the managed identity endpoint: use the static one.
    asked: list[str | None] = []
    monkeypatch.setattr(sources, "_credential",
                        lambda client_id: asked.append(client_id) or credential)
    value = leak_guard.value("kubeconfig")
    key_vault.set_secret("kubeconfig", value)
    spec = {"keyVault": {"url": key_vault.url, "managedIdentityClientId": CLIENT_ID,
                         "caBundle": str(tls_files.ca)}}

    assert for_spec(spec).get("kubeconfig") == value
    assert for_spec(spec).get("kubeconfig") == value
    assert asked == [CLIENT_ID]
    assert key_vault.stats().for_secret("kubeconfig") == 1


def test_the_secret_wrapper_hides_its_value(leak_guard) -> None:
    value = leak_guard.value("value")
    secret = Secret("kubeconfig", value, "Key Vault https://qa-kv.vault.azure.net", "abc")
    assert secret.reveal() == value
    for text in (str(secret), repr(secret), f"{secret}", f"{secret!r}", str([secret]),
                 str({"k": secret})):
        assert value not in text
    assert repr(secret) == ("Secret(name='kubeconfig', source='Key Vault "
                            "https://qa-kv.vault.azure.net', version='abc', value=<hidden>)")
    assert secret == Secret("kubeconfig", value, "Key Vault https://qa-kv.vault.azure.net", "abc")
    assert secret != Secret("kubeconfig", "other", "Key Vault https://qa-kv.vault.azure.net",
                            "abc")


def test_the_secret_wrapper_cannot_be_serialized(leak_guard) -> None:
    secret = Secret("kubeconfig", leak_guard.value("value"), "local settings of environment qa")
    with leak_guard.raises(TypeError, match="pass the secret's name"):
        pickle.dumps(secret)
    with leak_guard.raises(TypeError):
        json.dumps({"kubeconfig": secret})
    with leak_guard.raises(TypeError):
        copy.deepcopy(secret)
