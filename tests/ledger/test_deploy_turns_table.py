"""Deploy turns on Azurite: a free turn is taken once; a takeover needs the row unchanged; who
waits for a turn is listed per environment and dropped only as it was read."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient

from sandbox.azurite import Azurite
from shared.ledger.store import Ledger
from shared.ledger.turns import DeployTurns, TurnWaiters

AT = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


@pytest.fixture
def turns(azurite: Azurite, ledger: Ledger) -> Iterator[DeployTurns]:
    book = DeployTurns.beside(ledger)
    yield book
    TableServiceClient.from_connection_string(azurite.connection_string).delete_table(book.table)


@pytest.fixture
def waiters(azurite: Azurite, ledger: Ledger) -> Iterator[TurnWaiters]:
    book = TurnWaiters.beside(ledger)
    yield book
    TableServiceClient.from_connection_string(azurite.connection_string).delete_table(book.table)


def test_a_free_turn_is_taken_by_exactly_one_of_many(turns: DeployTurns) -> None:
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda n: turns.take("delivery", "prod", f"d-{n}", AT, None),
                            range(8)))
    assert won.count(True) == 1
    holder = turns.holder("delivery", "prod")
    assert holder is not None and holder.release_id == f"d-{won.index(True)}"
    assert holder.since == AT
    assert turns.holder("delivery", "qa") is None


def test_a_takeover_succeeds_once_and_only_from_the_row_it_read(turns: DeployTurns) -> None:
    assert turns.take("delivery", "prod", "d-1", AT, None)
    seen = turns.holder("delivery", "prod")
    assert seen is not None
    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(lambda n: turns.take("delivery", "prod", f"e-{n}", AT, seen),
                            range(4)))
    assert won.count(True) == 1
    assert not turns.take("delivery", "prod", "late", AT, seen)  # read before the takeover


def test_waiters_are_listed_per_environment_oldest_first(waiters: TurnWaiters) -> None:
    assert waiters.waiting("delivery", "prod") == []
    waiters.register("delivery", "prod", "d-2", "turn:prod:1", AT + timedelta(seconds=1))
    waiters.register("delivery", "prod", "d-1", "turn:prod:3", AT)
    waiters.register("delivery", "qa", "d-3", "turn:qa:1", AT)
    waiters.register("a|b", "c", "d-4", "turn:c:1", AT)  # not the partition of ("a", "b|c")
    assert [(w.release_id, w.event, w.since) for w in waiters.waiting("delivery", "prod")] == [
        ("d-1", "turn:prod:3", AT), ("d-2", "turn:prod:1", AT + timedelta(seconds=1))]
    assert waiters.waiting("a", "b|c") == []
    assert [w.release_id for w in waiters.waiting("a|b", "c")] == ["d-4"]


def test_a_waiter_registered_again_survives_the_wake_of_its_earlier_wait(
        waiters: TurnWaiters) -> None:
    waiters.register("delivery", "prod", "d-1", "turn:prod:1", AT)
    waiters.register("delivery", "prod", "d-2", "turn:prod:1", AT)
    seen = waiters.waiting("delivery", "prod")
    waiters.register("delivery", "prod", "d-1", "turn:prod:2", AT)  # woken, and waits again
    for waiter in seen:
        waiters.forget("delivery", "prod", waiter.release_id, waiter.etag)
    assert [(w.release_id, w.event) for w in waiters.waiting("delivery", "prod")] == [
        ("d-1", "turn:prod:2")]
    waiters.forget("delivery", "prod", "d-1")
    waiters.forget("delivery", "prod", "d-1")  # already gone: nothing to say
    assert waiters.waiting("delivery", "prod") == []
