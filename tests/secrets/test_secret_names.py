"""Key Vault's secret-name rules, environment names, vault URLs and the local naming scheme."""

from __future__ import annotations

import itertools

import pytest

from shared.secrets.names import (
    InvalidSecretName,
    check_environment_name,
    check_secret_name,
    is_loopback_url,
    local_setting_name,
    normalize_vault_url,
)


@pytest.mark.parametrize("name", [
    "a", "Z", "7", "-", "kubeconfig", "teams-webhook-url", "qa--kubeconfig", "A1-b2-C3",
    "x" * 127, "-leading", "trailing-",
])
def test_valid_secret_names_pass_unchanged(name: str) -> None:
    assert check_secret_name(name) == name


@pytest.mark.parametrize(("name", "reason"), [
    ("", "must not be empty"),
    ("x" * 128, "is 128 characters long; Key Vault allows at most 127"),
    ("qa/kubeconfig", "contains '/'"),
    ("qa_kubeconfig", "contains '_'"),
    ("kube.config", "contains '.'"),
    ("kube config", "contains ' '"),
    ("kubeconfig\n", "contains '\\n'"),
    ("clé", "contains 'é'"),
    ("٣", "contains '٣'"),  # a non-ASCII digit
    ("a:b@c", "contains ':', '@'"),
])
def test_invalid_secret_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(InvalidSecretName) as info:
        check_secret_name(name, "environments.qa.secrets.kubeconfig")
    assert str(info.value).startswith("environments.qa.secrets.kubeconfig: ")
    assert reason in str(info.value)
    assert info.value.field == "environments.qa.secrets.kubeconfig"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [None, 5, ["kubeconfig"], b"kubeconfig"])
def test_a_secret_name_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(InvalidSecretName, match=r"^secrets\.kubeconfig: must be a string, not "):
        check_secret_name(value, "secrets.kubeconfig")


def test_a_long_invalid_name_is_echoed_only_in_part() -> None:
    text = "not a name " + "y" * 200
    with pytest.raises(InvalidSecretName) as info:
        check_secret_name(text)
    assert "y" * 41 not in str(info.value)
    assert "…" in str(info.value)
    assert str(info.value).startswith("secret name: ")


@pytest.mark.parametrize("environment", ["qa", "prod", "QA", "eu-prod", "stage2", "a-b-c"])
def test_valid_environment_names(environment: str) -> None:
    assert check_environment_name(environment) == environment


@pytest.mark.parametrize("environment", [
    "", "qa-", "-qa", "qa--eu", "qa_eu", "qa.eu", "qa eu", "qä", None, 1,
])
def test_invalid_environment_names_are_refused(environment: object) -> None:
    with pytest.raises(InvalidSecretName, match=r"^secrets\.local\.environment: "):
        check_environment_name(environment, "secrets.local.environment")


@pytest.mark.parametrize(("environment", "name", "setting"), [
    ("qa", "kubeconfig", "SECRETS__QA__KUBECONFIG"),
    ("prod", "teams-webhook-url", "SECRETS__PROD__TEAMS_WEBHOOK_URL"),
    ("qa", "Approval-Signing-Key", "SECRETS__QA__APPROVAL_SIGNING_KEY"),
    ("eu-prod", "kubeconfig", "SECRETS__EU_PROD__KUBECONFIG"),
    ("qa", "qa--kubeconfig", "SECRETS__QA__QA__KUBECONFIG"),
    ("qa", "-x", "SECRETS__QA___X"),
])
def test_local_setting_names(environment: str, name: str, setting: str) -> None:
    assert local_setting_name(environment, name) == setting


def test_distinct_environment_and_secret_pairs_get_distinct_settings() -> None:
    # Names are case-insensitive in Key Vault, so pairs differing only in case may share one.
    environments = ["qa", "q-a", "qa-x", "x", "eu-prod", "eu"]
    names = ["x", "qa", "x--y", "y", "prod--x", "-x", "x-", "a-b", "a--b", "a---b"]
    seen: dict[str, tuple[str, str]] = {}
    for pair in itertools.product(environments, names):
        setting = local_setting_name(*pair)
        assert seen.setdefault(setting, pair) == pair, f"{pair} and {seen[setting]} collide"


def test_local_setting_name_validates_both_parts() -> None:
    with pytest.raises(InvalidSecretName, match="^environment: "):
        local_setting_name("qa_", "kubeconfig")
    with pytest.raises(InvalidSecretName, match="^secret name: "):
        local_setting_name("qa", "kube_config")


@pytest.mark.parametrize(("url", "normalized"), [
    ("https://qa-kv.vault.azure.net", "https://qa-kv.vault.azure.net"),
    ("https://QA-KV.vault.azure.net/", "https://qa-kv.vault.azure.net"),
    (" https://qa-kv.vault.azure.net:443 ", "https://qa-kv.vault.azure.net"),
    ("https://kv.vault.azure.cn", "https://kv.vault.azure.cn"),
    ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ("https://[::1]:8443/", "https://[::1]:8443"),
])
def test_vault_urls_are_normalized(url: str, normalized: str) -> None:
    assert normalize_vault_url(url) == normalized


@pytest.mark.parametrize(("url", "reason"), [
    ("http://qa-kv.vault.azure.net", "must be an https URL"),
    ("qa-kv.vault.azure.net", "must be an https URL"),
    ("https://qa-kv.vault.azure.net/secrets/x", "no path"),
    ("https://qa-kv.vault.azure.net?x=1", "no path"),
    ("https://user@qa-kv.vault.azure.net", "no path"),
    ("https://qa-kv.vault.azure.net:99999", "invalid port"),
    ("", "must be the vault's URL"),
    (None, "must be the vault's URL"),
])
def test_bad_vault_urls_are_refused_naming_the_field(url: object, reason: str) -> None:
    with pytest.raises(ValueError, match=r"^secrets\.keyVault\.url: ") as info:
        normalize_vault_url(url, "secrets.keyVault.url")
    assert reason in str(info.value)


@pytest.mark.parametrize(("url", "loopback"), [
    ("https://127.0.0.1:8443", True), ("https://127.1.2.3", True), ("https://[::1]:1", True),
    ("https://localhost:8443", True), ("https://kv.localhost", True),
    ("https://qa-kv.vault.azure.net", False), ("https://10.0.0.4", False),
    ("https://localhost.example.com", False),
])
def test_loopback_urls(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback
