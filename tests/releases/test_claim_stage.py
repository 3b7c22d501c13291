"""`take_turn` (the second half of `claim_stage`) against the ledger in Azurite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient

from activities.turns import take_turn
from sandbox.azurite import Azurite
from shared.ledger.records import ReleaseRecord, StageState
from shared.ledger.store import Ledger
from shared.ledger.turns import DeployTurns

AT = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
SERVICE = "delivery"


@pytest.fixture
def app_ledger(azurite: Azurite, ledger: Ledger,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """The test's ledger as the app finds it through its settings."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", ledger.prefix)
    yield ledger
    table = DeployTurns.beside(ledger).table
    TableServiceClient.from_connection_string(azurite.connection_string).delete_table(table)


def claim(ledger: Ledger, release_id: str, version: str, state: str = "Deploying") -> None:
    ledger.upsert_release(ReleaseRecord(
        release_id=release_id, service=SERVICE, version=version, digest="sha256:" + "a" * 64,
        state="Running", created_at=AT, updated_at=AT, environment="prod",
        stages={"prod": StageState(state, started=AT)}))


def test_one_release_holds_the_turn_until_its_stage_moves_on(app_ledger: Ledger) -> None:
    claim(app_ledger, "d-1", "v1.0.0")
    claim(app_ledger, "d-2", "v1.1.0")
    assert take_turn(SERVICE, "prod", "d-1", "v1.0.0") == {"waitFor": None, "newer": None}
    assert take_turn(SERVICE, "prod", "d-1", "v1.0.0")["waitFor"] is None  # a repeat keeps it
    assert take_turn(SERVICE, "prod", "d-2", "v1.1.0")["waitFor"] == "d-1"
    claim(app_ledger, "d-1", "v1.0.0", state="Healthy")
    assert take_turn(SERVICE, "prod", "d-2", "v1.1.0") == {"waitFor": None, "newer": None}
    assert DeployTurns.beside(app_ledger).holder(SERVICE, "prod").release_id == "d-2"


def test_an_operation_deploying_there_comes_first_but_not_before_itself(
        app_ledger: Ledger) -> None:
    claim(app_ledger, f"rollback:{SERVICE}:prod:1", "v0.9.0")
    claim(app_ledger, "d-1", "v1.0.0")
    assert take_turn(SERVICE, "prod", "d-1", "v1.0.0")["waitFor"] == f"rollback:{SERVICE}:prod:1"
    assert take_turn(SERVICE, "prod", f"rollback:{SERVICE}:prod:1", "v0.9.0",
                     older_allowed=True) == {"waitFor": None, "newer": None}


def test_an_older_version_finds_the_newer_one_unless_it_is_a_rollback(
        app_ledger: Ledger) -> None:
    claim(app_ledger, "d-new", "v2.0.0", state="Healthy")
    app_ledger.set_current(SERVICE, "prod", "d-new", "sha256:" + "b" * 64, "reg/d@sha256:b",
                           at=AT)
    claim(app_ledger, "d-old", "v1.0.0")
    assert take_turn(SERVICE, "prod", "d-old", "v1.0.0")["newer"] == {
        "releaseId": "d-new", "version": "v2.0.0"}
    claim(app_ledger, "d-old", "v1.0.0", state="Superseded")
    claim(app_ledger, f"rollback:{SERVICE}:prod:1", "v1.0.0")
    assert take_turn(SERVICE, "prod", f"rollback:{SERVICE}:prod:1", "v1.0.0",
                     older_allowed=True)["newer"] is None
