"""`GET /api/health` through the real app served by devhost: shape, and no setting values."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from shared.app_info import version_from_pyproject
from tests.apphost import REPO, with_host

FAKE_SECRET = "FAKE-ACCOUNT-KEY-d41d8cd98f00b204"
SIGNING_KEY = "signing-key-value-" + "s" * 32
FAKE_VAULT_REF = "@Microsoft.KeyVault(SecretUri=https://kv-fake-9f2c.vault.azure.net/secrets/p/)"


async def get_health(base_url: str) -> tuple[int, str, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/health") as response:
            return response.status, response.headers.get("Content-Type", ""), await response.json()


def good_approvals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPROVAL_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("APPROVAL_BASE_URL", "https://release.example.com")
    monkeypatch.setenv("APPROVAL_IDENTITY", "token")
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)


def test_health_reports_version_hub_and_source_names_only(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = f"DefaultEndpointsProtocol=https;AccountName=fake;AccountKey={FAKE_SECRET}"
    monkeypatch.setenv("AzureWebJobsStorage", storage)
    monkeypatch.setenv("RELEASE_POLICY_FILE", FAKE_VAULT_REF)
    good_approvals(monkeypatch)

    status, content_type, body = asyncio.run(with_host(data_dir, get_health))

    assert status == 200
    assert content_type.startswith("application/json")
    assert (body["status"], body["problems"]) == ("ok", [])
    assert body["version"] == version_from_pyproject((REPO / "pyproject.toml").read_text())
    assert body["durableHubName"] == "ReleaseHub"
    sources = {s["name"]: s["settings"] for s in body["configurationSources"]}
    assert "AzureWebJobsStorage" in sources["environment"]
    assert sources["key-vault-references"] == ["RELEASE_POLICY_FILE"]
    rendered = repr(body)
    assert FAKE_SECRET not in rendered
    assert "kv-fake-9f2c" not in rendered
    assert "DefaultEndpointsProtocol" not in rendered


def test_health_says_which_approval_settings_the_gates_cannot_use(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample policy's production gate needs a signing key, an address and a sign-in."""
    monkeypatch.delenv("RELEASE_POLICY_FILE", raising=False)
    good_approvals(monkeypatch)
    monkeypatch.setenv("APPROVAL_SIGNING_KEY", FAKE_SECRET[:20])
    monkeypatch.setenv("APPROVAL_IDENTITY", "appservice")

    status, _, body = asyncio.run(with_host(data_dir, get_health))

    assert status == 200  # still serving webhooks; the status says what is wrong
    assert body["status"] == "misconfigured"
    assert [p["setting"] for p in body["problems"]] == ["APPROVAL_IDENTITY",
                                                        "APPROVAL_SIGNING_KEY"]
    assert "App Service Authentication is off" in body["problems"][0]["problem"]
    assert body["problems"][1]["problem"].startswith("APPROVAL_SIGNING_KEY is too short")
    assert FAKE_SECRET[:20] not in repr(body) and "release.example.com" not in repr(body)

    monkeypatch.setenv("APPROVAL_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    _, _, body = asyncio.run(with_host(data_dir, get_health))
    assert (body["status"], body["problems"]) == ("ok", [])
