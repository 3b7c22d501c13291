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
