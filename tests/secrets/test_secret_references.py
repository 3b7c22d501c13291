"""The start-up check for app settings that still hold an unresolved Key Vault reference."""

from __future__ import annotations

import logging

import pytest

from shared.secrets.references import (
    log_unresolved_references,
    reference_target,
    unresolved_references,
)


@pytest.mark.parametrize(("value", "target"), [
    ("@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/secrets/kubeconfig/)",
     "https://qa-kv.vault.azure.net/secrets/kubeconfig"),
    ("@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/secrets/kubeconfig)",
     "https://qa-kv.vault.azure.net/secrets/kubeconfig"),
    ("@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/secrets/kubeconfig/"
     "ec96f02080254f109c51a1f14cdb1931)",
     "https://qa-kv.vault.azure.net/secrets/kubeconfig/ec96f02080254f109c51a1f14cdb1931"),
    ("@microsoft.keyvault(secreturi=https://qa-kv.vault.azure.net/secrets/x/)",
     "https://qa-kv.vault.azure.net/secrets/x"),
    ("  @Microsoft.KeyVault(VaultName=qa-kv;SecretName=teams-webhook)  ",
     "vault qa-kv, secret teams-webhook"),
    ("@Microsoft.KeyVault(VaultName=qa-kv; SecretName=teams-webhook; SecretVersion=abc123)",
     "vault qa-kv, secret teams-webhook, version abc123"),
    # Nothing beyond the vault and secret is echoed: a query string is dropped.
    ("@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/secrets/x/?sig=ZZZ)",
     "https://qa-kv.vault.azure.net/secrets/x"),
])
def test_reference_targets(value: str, target: str) -> None:
    assert reference_target(value) == target


@pytest.mark.parametrize("value", [
    "@Microsoft.KeyVault(hunter2-not-a-reference)",
    "@Microsoft.KeyVault(SecretUri=http://qa-kv.vault.azure.net/secrets/x/)",
    "@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/keys/x/)",
    "@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/secrets/a_b/)",
    "@Microsoft.KeyVault(SecretUri=https://user:pw@qa-kv.vault.azure.net/secrets/x/)",
    "@Microsoft.KeyVault(VaultName=qa-kv)",
    "@Microsoft.KeyVault(VaultName=q;SecretName=x)",
    "@Microsoft.KeyVault(VaultName=qa-kv;SecretName=x;SecretVersion=not/a/version)",
    "@Microsoft.KeyVault(VaultName=qa-kv;SecretName=bad name)",
    "not a reference",
])
def test_malformed_references_have_no_target(value: str) -> None:
    assert reference_target(value) is None


def test_each_unresolved_reference_is_a_problem_naming_setting_and_target() -> None:
    environ = {
        "TEAMS_WEBHOOK": "@Microsoft.KeyVault(VaultName=prod-kv;SecretName=teams-webhook)",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "SECRETS__QA__KUBECONFIG":
            "@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/secrets/kubeconfig/)",
        "RESOLVED": "a value that came out of the vault",
        "EMPTY": "",
    }
    problems = unresolved_references(environ)
    assert [problem.setting for problem in problems] == ["SECRETS__QA__KUBECONFIG",
                                                         "TEAMS_WEBHOOK"]
    first, second = (str(problem) for problem in problems)
    assert first.startswith("app setting SECRETS__QA__KUBECONFIG holds an unresolved Key Vault "
                            "reference to https://qa-kv.vault.azure.net/secrets/kubeconfig;")
    assert "Key Vault Secrets User" in first
    assert second.startswith("app setting TEAMS_WEBHOOK holds an unresolved Key Vault reference"
                             " to vault prod-kv, secret teams-webhook;")


def test_a_malformed_reference_is_reported_without_echoing_it() -> None:
    problems = unresolved_references({"X": "@Microsoft.KeyVault(hunter2-and-more)"})
    assert len(problems) == 1
    assert "hunter2" not in problems[0].message
    assert "malformed" in problems[0].message


def test_no_problems_without_references() -> None:
    assert unresolved_references({"A": "1", "B": "@Microsoft.KeyVault(", "C": "x)"}) == []


def test_start_up_check_logs_an_error_per_problem(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"A": "@Microsoft.KeyVault(VaultName=qa-kv;SecretName=a)",
               "B": "@Microsoft.KeyVault(VaultName=qa-kv;SecretName=b)", "C": "plain"}
    with caplog.at_level(logging.ERROR, logger="shared.secrets.references"):
        problems = log_unresolved_references(environ)
    assert [p.setting for p in problems] == ["A", "B"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"configuration error: {p}" for p in problems]


def test_start_up_check_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SECRETS__PROD__KUBECONFIG",
                       "@Microsoft.KeyVault(VaultName=prod-kv;SecretName=kubeconfig)")
    problems = log_unresolved_references()
    assert "SECRETS__PROD__KUBECONFIG" in [problem.setting for problem in problems]
    assert any("SECRETS__PROD__KUBECONFIG" in r.getMessage() for r in caplog.records)


def test_start_up_check_is_quiet_when_all_is_well(caplog: pytest.LogCaptureFixture) -> None:
    assert log_unresolved_references({"A": "1"}) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
