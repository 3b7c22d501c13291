"""`try_turn` (the second half of `claim_stage`) against the ledger in Azurite: who deploys
first, and who registers to be woken when that ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient

from activities.turns import try_turn
from sandbox.azurite import Azurite
from shared.ledger.records import ReleaseRecord, StageState
from shared.ledger.store import Ledger
from shared.ledger.turns import DeployTurns, TurnWaiters

AT = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
SERVICE = "delivery"


@pytest.fixture
def app_ledger(azurite: Azurite, ledger: Ledger,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """The test's ledger as the app finds it through its settings."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", ledger.prefix)
    yield ledger
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    for table in (DeployTurns.beside(ledger).table, TurnWaiters.beside(ledger).table):
        service.delete_table(table)


def claim(ledger: Ledger, release_id: str, version: str, state: str = "Deploying") -> None:
    ledger.upsert_release(ReleaseRecord(
        release_id=release_id, service=SERVICE, version=version, digest="sha256:" + "a" * 64,
        state="Running", created_at=AT, updated_at=AT, environment="prod",
        stages={"prod": StageState(state, started=AT)}))


def test_one_release_holds_the_turn_until_its_stage_moves_on(app_ledger: Ledger) -> None:
    claim(app_ledger, "d-1", "v1.0.0")
    claim(app_ledger, "d-2", "v1.1.0")
    assert try_turn(SERVICE, "prod", "d-1", "v1.0.0") == {"waitFor": None, "newer": None}
    assert try_turn(SERVICE, "prod", "d-1", "v1.0.0")["waitFor"] is None  # a repeat keeps it
    assert try_turn(SERVICE, "prod", "d-2", "v1.1.0")["waitFor"] == "d-1"
    claim(app_ledger, "d-1", "v1.0.0", state="Healthy")
    assert try_turn(SERVICE, "prod", "d-2", "v1.1.0") == {"waitFor": None, "newer": None}
    assert DeployTurns.beside(app_ledger).holder(SERVICE, "prod").release_id == "d-2"


def test_an_operation_deploying_there_comes_first_but_not_before_itself(
        app_ledger: Ledger) -> None:
    claim(app_ledger, f"rollback:{SERVICE}:prod:1", "v0.9.0")
    claim(app_ledger, "d-1", "v1.0.0")
    assert try_turn(SERVICE, "prod", "d-1", "v1.0.0")["waitFor"] == f"rollback:{SERVICE}:prod:1"
    assert try_turn(SERVICE, "prod", f"rollback:{SERVICE}:prod:1", "v0.9.0",
                    older_allowed=True) == {"waitFor": None, "newer": None}


def test_an_older_version_finds_the_newer_one_unless_it_is_a_rollback(
        app_ledger: Ledger) -> None:
    claim(app_ledger, "d-new", "v2.0.0", state="Healthy")
    app_ledger.set_current(SERVICE, "prod", "d-new", "sha256:" + "b" * 64, "reg/d@sha256:b",
                           at=AT)
    claim(app_ledger, "d-old", "v1.0.0")
    assert try_turn(SERVICE, "prod", "d-old", "v1.0.0")["newer"] == {
        "releaseId": "d-new", "version": "v2.0.0"}
    claim(app_ledger, "d-old", "v1.0.0", state="Superseded")
    claim(app_ledger, f"rollback:{SERVICE}:prod:1", "v1.0.0")
    assert try_turn(SERVICE, "prod", f"rollback:{SERVICE}:prod:1", "v1.0.0",
                    older_allowed=True)["newer"] is None


def test_a_claim_that_must_wait_registers_its_event_until_it_holds_the_turn(
        app_ledger: Ledger) -> None:
    for release_id, version in (("d-1", "v1.0.0"), ("d-2", "v1.1.0"), ("d-3", "v1.2.0")):
        claim(app_ledger, release_id, version)
    waiters = TurnWaiters.beside(app_ledger)

    def registered() -> list[tuple[str, str]]:
        return [(w.release_id, w.event) for w in waiters.waiting(SERVICE, "prod")]

    assert try_turn(SERVICE, "prod", "d-1", "v1.0.0", wake="turn:prod:1")["waitFor"] is None
    assert registered() == []  # the turn was free: nobody to wake it
    assert try_turn(SERVICE, "prod", "d-2", "v1.1.0", wake="turn:prod:1")["waitFor"] == "d-1"
    assert try_turn(SERVICE, "prod", "d-3", "v1.2.0")["waitFor"] == "d-1"  # older code's claim
    assert registered() == [("d-2", "turn:prod:1")]
    assert try_turn(SERVICE, "prod", "d-2", "v1.1.0", wake="turn:prod:2",
                    waited=True)["waitFor"] == "d-1"
    assert registered() == [("d-2", "turn:prod:2")]  # each wait its own event
    claim(app_ledger, "d-1", "v1.0.0", state="Healthy")
    assert try_turn(SERVICE, "prod", "d-2", "v1.1.0", wake="turn:prod:3",
                    waited=True) == {"waitFor": None, "newer": None}
    assert registered() == []


def test_a_claim_and_a_holder_ending_at_once_never_miss_each_other(app_ledger: Ledger) -> None:
    """Either the claim takes the turn, or the holder's wake-up finds the claim registered."""
    waiters = TurnWaiters.beside(app_ledger)

    def end(holder: str, after: float) -> list[str]:  # as record_release: the end, then who waits
        time.sleep(after)
        claim(app_ledger, holder, "v1.0.0", state="Healthy")
        return [w.release_id for w in waiters.waiting(SERVICE, "prod")]

    with ThreadPoolExecutor(2) as pool:
        for n in range(60):  # the holder ends 0-59 ms into the claim: before, while, after
            holder, waiter = f"h-{n}", f"w-{n}"
            claim(app_ledger, holder, "v1.0.0")
            assert try_turn(SERVICE, "prod", holder, "v1.0.0")["waitFor"] is None
            claim(app_ledger, waiter, "v1.1.0")
            claimed = pool.submit(try_turn, SERVICE, "prod", waiter, "v1.1.0", False,
                                  f"turn:prod:{n}")
            seen = pool.submit(end, holder, n / 1000)
            assert claimed.result()["waitFor"] is None or waiter in seen.result(), n
            claim(app_ledger, waiter, "v1.1.0", state="Healthy")
            waiters.forget(SERVICE, "prod", waiter)
