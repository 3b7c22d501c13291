"""A window's delivery figures read only that window's rows, on a ledger of 5,000 releases.

Azurite holds 3,900 releases from the three years before the window and 1,100 in it (more
than one page of the Tables API, so the window is read in pages). The ledger reads through
a `TableServiceClient` whose pipeline counts every entity the service sends back, per table
(the SDK's `raw_response_hook`): our code runs as it does in the app.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from sandbox.azurite import Azurite
from sandbox.table_reads import EntityCounter
from shared.ledger.records import (
    EventRecord,
    ReleaseRecord,
    StageState,
    claim_entity,
)
from shared.ledger.store import Ledger
from shared.metrics.from_ledger import read_delivery

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=30)
SERVICES = ("delivery", "web")
OLD, NEW = 3_900, 1_100
HEALTHY_NEW, FAILED_NEW = 40, 20   # production deployments in the window; the rest wait
BATCH = 100  # the most operations one transaction takes


def stage(state: str, finished: datetime) -> StageState:
    return StageState(state, finished - timedelta(minutes=30), finished)


def history() -> tuple[list[ReleaseRecord], list[ReleaseRecord]]:
    """(old, new): old ones healthy in production long ago; new ones in the window, the
    first HEALTHY_NEW healthy there, the next FAILED_NEW rolled back, the rest waiting."""
    old, new = [], []
    for index in range(OLD):
        created = SINCE - timedelta(days=1, hours=6 * index)  # back to three years ago
        old.append(record(index, created, {"prod": stage("Healthy", created + timedelta(
            hours=2))}, "Completed"))
    for index in range(NEW):
        created = SINCE + timedelta(days=1, minutes=30 * index)
        finished = created + timedelta(hours=2)
        if index < HEALTHY_NEW:
            stages, state = {"prod": stage("Healthy", finished)}, "Completed"
        elif index < HEALTHY_NEW + FAILED_NEW:
            stages, state = {"prod": stage("RolledBack", finished)}, "RolledBack"
        else:
            stages, state = {"prod": StageState("WaitingForApproval", finished)}, \
                "WaitingForApproval"
        new.append(record(OLD + index, created, stages, state))
    return old, new


def record(index: int, created: datetime, stages: dict[str, StageState],
           state: str) -> ReleaseRecord:
    service = SERVICES[index % 2]
    digest = "sha256:" + f"{index:064x}"
    finished = max([created, *(s.finished for s in stages.values() if s.finished)])
    return ReleaseRecord(f"{service}-{index:016x}", service, f"v1.{index}.0", digest, state,
                         created, finished, environment="prod", stages=stages)


def write(service: TableServiceClient, table: str, entities: list[dict[str, Any]]) -> None:
    """Insert in transactions of up to BATCH entities of one partition each."""
    client = service.create_table_if_not_exists(table)
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for entity in entities:
        by_partition.setdefault(entity["PartitionKey"], []).append(entity)
    for rows in by_partition.values():
        for start in range(0, len(rows), BATCH):
            client.submit_transaction([("create", row) for row in rows[start:start + BATCH]])


@pytest.fixture(scope="module")
def seeded(azurite: Azurite) -> tuple[str, list[ReleaseRecord], list[ReleaseRecord]]:
    """A fresh ledger prefix with the releases; the claims and push events (2 h before
    healthy: at creation) of the window's healthy ones, one event lost, and of 200 old ones."""
    prefix = "w" + uuid.uuid4().hex[:10]
    writer = TableServiceClient.from_connection_string(azurite.connection_string)
    old, new = history()
    write(writer, f"{prefix}Releases", [row.to_entity() for row in old + new])
    pushed = new[:HEALTHY_NEW] + old[:200]
    write(writer, f"{prefix}Digests", [claim_entity(
        row.service, row.digest, row.release_id, row.version, f"push-{row.release_id}",
        row.created_at, "token") for row in pushed])
    lost = new[HEALTHY_NEW - 1]  # its event row's write was lost: found by its claim
    write(writer, f"{prefix}Events", [EventRecord(
        f"push-{row.release_id}", row.updated_at - timedelta(hours=2),
        "test", "push", "registry.test", row.service, row.version, row.digest, row.service,
        "started", release_id=row.release_id).to_entity() for row in pushed if row != lost])
    return prefix, old, new


@pytest.fixture
def counted(azurite: Azurite, seeded: tuple[str, Any, Any]) -> tuple[Ledger, EntityCounter]:
    counter = EntityCounter()
    client = TableServiceClient.from_connection_string(azurite.connection_string,
                                                       raw_response_hook=counter)
    ledger = Ledger(client, seeded[0])
    for table in ledger.table_names:  # made before counting: a create is no read
        ledger._table(table, "prepare")
    return ledger, counter


def test_the_window_query_reads_the_window_rows_only_in_pages(
        counted: tuple[Ledger, EntityCounter], seeded: tuple[str, Any, Any]) -> None:
    ledger, counter = counted
    prefix, _, new = seeded
    rows = ledger.releases_since(SINCE)
    assert sorted(r.release_id for r in rows) == sorted(r.release_id for r in new)
    assert counter.entities == {f"{prefix}Releases": NEW}
    assert counter.requests[f"{prefix}Releases"] >= 2  # more than one page, all of them read

    counter.reset()
    web = ledger.releases_since(SINCE, "web")
    assert {r.service for r in web} == {"web"} and len(web) == NEW // 2
    assert counter.entities == {f"{prefix}Releases": NEW // 2}


def test_the_figures_of_30_days_read_the_window_and_its_push_events_only(
        counted: tuple[Ledger, EntityCounter], seeded: tuple[str, Any, Any]) -> None:
    ledger, counter = counted
    prefix = seeded[0]
    report = read_delivery(ledger, {"delivery": "prod", "web": "prod"}, 30, now=NOW)
    assert counter.entities == {f"{prefix}Releases": NEW,
                                f"{prefix}Events": HEALTHY_NEW - 1,  # the window's pushes
                                f"{prefix}Digests": 1}  # the claim of the one without
    assert counter.requests[f"{prefix}Events"] == len(SERVICES)  # a query each (lost row: 404)
    figures = report.all
    assert (figures.deployments, figures.failed) == (HEALTHY_NEW + FAILED_NEW, FAILED_NEW)
    # from each push event, and from the claim (made as the push arrived) without one
    assert figures.lead_times == (2 * 3600.0,) * HEALTHY_NEW
    assert report.by_service["web"].deployments == (HEALTHY_NEW + FAILED_NEW) // 2


def test_the_counter_sees_a_whole_table_read(counted: tuple[Ledger, EntityCounter],
                                             seeded: tuple[str, Any, Any]) -> None:
    """The check above could fail: the page listing, asked for more rows than the last
    30 days hold, falls back to the whole table, and the counter sees all 5,000."""
    ledger, counter = counted
    ledger.releases(limit=NEW + 1)
    assert counter.entities[f"{seeded[0]}Releases"] == NEW + OLD + NEW
