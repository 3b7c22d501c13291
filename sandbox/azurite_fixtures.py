"""pytest fixtures for storage: one Azurite per session and a ledger on fresh tables per test.

Load them in a test folder's conftest (pytest refuses `pytest_plugins` below the root one):

    from sandbox.azurite_fixtures import *  # noqa: F403

Each such conftest gets its own Azurite for the session. If Azurite is not installed the
fixtures fail (never skip) saying to run `npm install`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient

from sandbox.azurite import Azurite
from shared.ledger import Ledger

__all__ = ["azurite", "ledger"]

# Tests want a dead storage reported at once, not after the SDK's default back-off.
TEST_RETRIES = 1


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A running Azurite on free ports, persisting to a session temp dir."""
    with Azurite(tmp_path_factory.mktemp("azurite")) as running:
        yield running


@pytest.fixture
def ledger(azurite: Azurite) -> Iterator[Ledger]:
    """A ledger on the session's Azurite under a table prefix of its own; tables dropped after."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    fresh = Ledger.from_connection_string(azurite.connection_string, prefix, retries=TEST_RETRIES)
    yield fresh
    if azurite.running:
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        for table in fresh.table_names:
            service.delete_table(table)
