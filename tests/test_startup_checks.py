"""Start-up: an app setting still holding a Key Vault reference is reported, by name only."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from devhost.host import Host

REPO = Path(__file__).resolve().parent.parent
REFERENCE = ("@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/secrets/"
             "registry-webhook-token/)")


def test_unresolved_reference_is_logged_when_the_app_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", REFERENCE)

    async def start_and_stop() -> None:
        host = Host(REPO, port=0, data_dir=tmp_path)
        await host.start()
        await host.stop()

    with caplog.at_level(logging.ERROR):
        asyncio.run(start_and_stop())
    problems = [r.getMessage() for r in caplog.records if "AzureWebJobsStorage" in r.getMessage()]
    assert len(problems) == 1
    assert "qa-kv.vault.azure.net" in problems[0]
    assert "@Microsoft.KeyVault(" not in problems[0]


def start_and_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Start the app in devhost and stop it; the error lines it logged."""
    async def start_and_stop() -> None:
        host = Host(REPO, port=0, data_dir=tmp_path)
        await host.start()
        await host.stop()

    caplog.clear()
    with caplog.at_level(logging.ERROR):
        asyncio.run(start_and_stop())
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_approval_settings_the_gates_cannot_use_are_logged_when_the_app_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The sample policy has a production gate; its settings are checked at start-up."""
    monkeypatch.delenv("RELEASE_POLICY_FILE", raising=False)
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    monkeypatch.delenv("APPROVAL_BASE_URL", raising=False)
    monkeypatch.delenv("WEBSITE_HOSTNAME", raising=False)
    monkeypatch.setenv("APPROVAL_IDENTITY", "appservice")
    monkeypatch.setenv("APPROVAL_SIGNING_KEY", "too-short-secret")

    errors = [line for line in start_and_log(tmp_path, caplog) if "APPROVAL_" in line]
    assert errors == [
        "configuration error: APPROVAL_IDENTITY is appservice but App Service Authentication"
        " is off (WEBSITE_AUTH_ENABLED is not true), so anyone could send the sign-in headers:"
        " turn on App Service Authentication, or set APPROVAL_IDENTITY=token",
        "configuration error: APPROVAL_SIGNING_KEY is too short: use at least 32 random"
        " characters (`openssl rand -base64 48`)",
        "configuration error: APPROVAL_BASE_URL is not set (nor WEBSITE_HOSTNAME): approval"
        " links need the app's public address"]
    assert not any("too-short-secret" in r.getMessage() for r in caplog.records)

    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    monkeypatch.setenv("APPROVAL_SIGNING_KEY", "k" * 40)
    monkeypatch.setenv("APPROVAL_BASE_URL", "https://release.example.com")
    assert [line for line in start_and_log(tmp_path, caplog) if "APPROVAL_" in line] == []
