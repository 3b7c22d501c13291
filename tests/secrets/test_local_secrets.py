"""LocalSource: secrets from app settings under SECRETS__<ENV>__<NAME>."""

from __future__ import annotations

import pytest

from shared.secrets.errors import SecretNotFound
from shared.secrets.local import LocalSource
from shared.secrets.names import InvalidSecretName


def test_secrets_come_from_the_environments_settings(leak_guard) -> None:
    qa, prod = leak_guard.value("qa"), leak_guard.value("prod")
    settings = {"SECRETS__QA__TEAMS_WEBHOOK_URL": qa, "SECRETS__PROD__TEAMS_WEBHOOK_URL": prod}

    assert LocalSource("qa", settings).get("teams-webhook-url") == qa
    assert LocalSource("prod", settings).get("Teams-Webhook-Url") == prod
    secret = LocalSource("qa", settings).secret("teams-webhook-url")
    assert (secret.name, secret.source, secret.version) == (
        "teams-webhook-url", "local settings of environment qa", None)


def test_environment_names_with_hyphens(leak_guard) -> None:
    value = leak_guard.value("v")
    assert LocalSource("eu-prod", {"SECRETS__EU_PROD__KUBECONFIG": value}).get("kubeconfig") \
        == value


def test_a_differently_cased_setting_is_found(leak_guard) -> None:
    value = leak_guard.value("v")
    assert LocalSource("qa", {"secrets__qa__kubeconfig": value}).get("kubeconfig") == value
    exact = leak_guard.value("exact")
    both = {"secrets__qa__kubeconfig": value, "SECRETS__QA__KUBECONFIG": exact}
    assert LocalSource("qa", both).get("kubeconfig") == exact


@pytest.mark.parametrize("settings", [{}, {"SECRETS__QA__KUBECONFIG": ""},
                                      {"SECRETS__QA__KUBECONFIG": "   "},
                                      {"SECRETS__PROD__KUBECONFIG": "x"}])
def test_a_missing_setting_is_not_found_naming_the_setting(settings, leak_guard) -> None:
    with leak_guard.raises(SecretNotFound) as info:
        LocalSource("qa", settings).get("kubeconfig")
    assert str(info.value) == ("local settings of environment qa: secret 'kubeconfig': app "
                               "setting SECRETS__QA__KUBECONFIG is not set")


def test_an_unresolved_key_vault_reference_is_not_a_value(leak_guard) -> None:
    reference = "@Microsoft.KeyVault(VaultName=qa-kv;SecretName=kubeconfig)"
    with leak_guard.raises(SecretNotFound) as info:
        LocalSource("qa", {"SECRETS__QA__KUBECONFIG": reference}).get("kubeconfig")
    assert "SECRETS__QA__KUBECONFIG holds an unresolved Key Vault reference" in str(info.value)


def test_settings_are_read_at_each_call(monkeypatch: pytest.MonkeyPatch, leak_guard) -> None:
    source = LocalSource("qa")  # os.environ
    monkeypatch.delenv("SECRETS__QA__SIGNING_KEY", raising=False)
    with leak_guard.raises(SecretNotFound):
        source.get("signing-key")
    first, second = leak_guard.value("first"), leak_guard.value("second")
    monkeypatch.setenv("SECRETS__QA__SIGNING_KEY", first)
    assert source.get("signing-key") == first
    monkeypatch.setenv("SECRETS__QA__SIGNING_KEY", second)
    source.invalidate("signing-key")  # nothing cached: a no-op
    assert source.get("signing-key") == second


def test_a_callable_supplies_the_settings(leak_guard) -> None:
    value = leak_guard.value("v")
    assert LocalSource("qa", lambda: {"SECRETS__QA__A": value}).get("a") == value


def test_names_are_validated() -> None:
    with pytest.raises(InvalidSecretName):
        LocalSource("qa", {}).get("a_b")
    with pytest.raises(InvalidSecretName):
        LocalSource("qa", {}).invalidate("a/b")
    with pytest.raises(InvalidSecretName, match="^environment: "):
        LocalSource("qa_x")


def test_repr_names_the_environment() -> None:
    assert repr(LocalSource("qa", {})) == "<LocalSource local settings of environment qa>"
