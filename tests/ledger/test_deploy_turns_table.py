"""Deploy turns on Azurite: a free turn is taken once; a takeover needs the row unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient

from sandbox.azurite import Azurite
from shared.ledger.store import Ledger
from shared.ledger.turns import DeployTurns

AT = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


@pytest.fixture
def turns(azurite: Azurite, ledger: Ledger) -> Iterator[DeployTurns]:
    book = DeployTurns.beside(ledger)
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
