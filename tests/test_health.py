"""`GET /api/health` through the real app served by devhost: shape, and no setting values."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from shared.app_info import version_from_pyproject
from tests.apphost import REPO, with_host

FAKE_SECRET = "FAKE-ACCOUNT-KEY-d41d8cd98f00b204"
FAKE_VAULT_REF = "@Microsoft.KeyVault(SecretUri=https://kv-fake-9f2c.vault.azure.net/secrets/p/)"


async def get_health(base_url: str) -> tuple[int, str, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/health") as response:
            return response.status, response.headers.get("Content-Type", ""), await response.json()


def test_health_reports_version_hub_and_source_names_only(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = f"DefaultEndpointsProtocol=https;AccountName=fake;AccountKey={FAKE_SECRET}"
    monkeypatch.setenv("AzureWebJobsStorage", storage)
    monkeypatch.setenv("RELEASE_POLICY_FILE", FAKE_VAULT_REF)

    status, content_type, body = asyncio.run(with_host(data_dir, get_health))

    assert status == 200
    assert content_type.startswith("application/json")
    assert body["status"] == "ok"
    assert body["version"] == version_from_pyproject((REPO / "pyproject.toml").read_text())
    assert body["durableHubName"] == "ReleaseHub"
    sources = {s["name"]: s["settings"] for s in body["configurationSources"]}
    assert "AzureWebJobsStorage" in sources["environment"]
    assert sources["key-vault-references"] == ["RELEASE_POLICY_FILE"]
    rendered = repr(body)
    assert FAKE_SECRET not in rendered
    assert "kv-fake-9f2c" not in rendered
    assert "DefaultEndpointsProtocol" not in rendered
