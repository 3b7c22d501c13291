"""Azurite runner: serves on free ports, fails loudly (restarts: see test_ledger.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from sandbox.azurite import Azurite, AzuriteError
from sandbox.tools import ToolMissingError


def test_session_azurite_serves_tables(azurite: Azurite) -> None:
    assert azurite.running
    assert len(set(azurite.ports)) == 3
    assert f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/devstoreaccount1" \
        in azurite.connection_string
    assert f"BlobEndpoint=http://127.0.0.1:{azurite.blob_port}/devstoreaccount1" \
        in azurite.connection_string
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.create_table_if_not_exists("azuriteSmoke")
    assert "azuriteSmoke" in {table.name for table in service.list_tables()}
    service.delete_table("azuriteSmoke")


def test_missing_azurite_says_to_run_npm_install(tmp_path: Path) -> None:
    emulator = Azurite(tmp_path, binary=tmp_path / "node_modules" / ".bin" / "azurite")
    with pytest.raises(ToolMissingError, match=r"Azurite not found: run `npm install` in the "
                                               r"repo \(make test does\)"):
        emulator.start()
    assert not emulator.running


def test_a_dying_azurite_is_reported_with_its_log_tail(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        emulator = Azurite(tmp_path, table_port=taken.getsockname()[1])
        with pytest.raises(AzuriteError, match=r"(?s)exited with code \d+ .*log tail:.*EADDRINUSE"):
            emulator.start()
    assert not emulator.running
