"""The ledger against real Azurite: idempotent upserts, the digest claim, queries, failures."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from sandbox.azurite import ACCOUNT_KEY, Azurite
from shared.ledger import (
    DeployedChart,
    EnvironmentState,
    EventRecord,
    Ledger,
    LedgerError,
    ReleaseRecord,
    StageState,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def event(event_id: str, minutes: int = 0, **changes: object) -> EventRecord:
    fields: dict[str, object] = dict(
        event_id=event_id, received_at=T0 + timedelta(minutes=minutes), source="acr-webhook",
        action="push", registry="myacr.azurecr.io", repository="delivery", tag="v1.4.2",
        digest=digest(1), service="delivery", outcome="started", reason="",
        release_id="delivery-0000000000000000",
    )
    fields.update(changes)
    return EventRecord(**fields)


def release(release_id: str, service: str = "delivery", state: str = "Running",
            minutes: int = 0) -> ReleaseRecord:
    at = T0 + timedelta(minutes=minutes)
    return ReleaseRecord(release_id, service, f"v1.{minutes}.0", digest(minutes), state, at, at,
                         environment="qa", step="deploy",
                         stages={"qa": StageState("Running", at)})


# Events --------------------------------------------------------------------------------------

def test_same_event_twice_is_one_row_with_the_first_outcome_and_a_count(
        ledger: Ledger) -> None:
    ledger.record_event(event("e1"))
    ledger.record_event(event("e1", minutes=1, outcome="duplicate",
                              reason="digest already claimed"))
    rows = ledger.events("delivery")
    assert [(row.event_id, row.outcome, row.deliveries) for row in rows] == [
        ("e1", "started", 2)]
    stored = ledger.get_event("e1")
    assert stored == replace(event("e1"), deliveries=2,
                             last_delivered_at=T0 + timedelta(minutes=1))
    assert ledger.get_event("e1", service="delivery") == stored
    assert ledger.get_event("nope") is None
    assert ledger.get_event("nope", service="delivery") is None


def test_concurrent_redeliveries_each_count_once(ledger: Ledger) -> None:
    ledger.record_event(event("e1"))
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: ledger.record_event(event("e1", minutes=n, outcome="duplicate")),
                      range(1, 25)))
    stored = ledger.get_event("e1", service="delivery")
    assert stored is not None
    assert (stored.outcome, stored.deliveries, stored.last_delivered_at) == (
        "started", 25, T0 + timedelta(minutes=24))


class LosingTransport(RequestsTransport):
    """Loses the reply of the next request of `method` to `table` (the request lands)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose: tuple[str, str] | None = None
        self.requests: list[tuple[str, str]] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        table = request.url.split("?")[0].rsplit("/", 1)[-1].split("(")[0]
        self.requests.append((request.method, table))
        response = super().send(request, **kwargs)
        if self.lose == (request.method, table):
            self.lose = None
            raise ServiceResponseError("connection reset before the reply (test)")
        return response


def test_a_lost_reply_does_not_count_a_delivery_twice(ledger: Ledger) -> None:
    transport = LosingTransport()
    assert ledger.source is not None
    client = TableServiceClient.from_connection_string(ledger.source[1], transport=transport)
    losing = Ledger(client, ledger.prefix)
    for method, minutes in (("POST", 0), ("PATCH", 1)):
        transport.lose, transport.requests = (method, ledger.events_table), []
        losing.record_event(event("e1", minutes=minutes,
                                  outcome="started" if minutes == 0 else "duplicate"))
        assert transport.lose is None  # that reply was lost; the write was tried again
        assert transport.requests[-1] == ("GET", ledger.events_table)  # and found its token
    assert ledger.get_event("e1") == replace(event("e1"), deliveries=2,
                                             last_delivered_at=T0 + timedelta(minutes=1))


def test_a_started_delivery_recorded_after_its_redelivery_is_what_the_row_says(
        ledger: Ledger) -> None:
    ledger.record_event(event("e1", minutes=1, outcome="duplicate", reason="exists"))
    ledger.record_event(event("e1", reason="delivery v1.4.2"))
    assert ledger.get_event("e1") == replace(event("e1", reason="delivery v1.4.2"),
                                             deliveries=2,
                                             last_delivered_at=T0 + timedelta(minutes=1))


def test_events_newest_first_by_service_unmatched_and_since(ledger: Ledger) -> None:
    ledger.record_event(event("a", minutes=1))
    ledger.record_event(event("b", minutes=3, service="billing", repository="billing"))
    ledger.record_event(event("c", minutes=2, service=None, tag=None, release_id=None,
                              outcome="ignored", reason="push without a tag"))
    ledger.record_event(event("d", minutes=4, outcome="rejected", reason="no valid digest"))
    assert [e.event_id for e in ledger.events()] == ["d", "b", "c", "a"]
    assert [e.event_id for e in ledger.events(limit=2)] == ["d", "b"]
    assert [e.event_id for e in ledger.events("delivery")] == ["d", "a"]
    assert [e.event_id for e in ledger.events(unmatched=True)] == ["c"]
    assert [e.event_id for e in ledger.events(since=T0 + timedelta(minutes=2))] == ["d", "b", "c"]
    unmatched = ledger.get_event("c")
    assert unmatched is not None and unmatched.service is None and unmatched.tag is None
    assert unmatched.reason == "push without a tag"


def test_event_ids_with_characters_keys_forbid(ledger: Ledger) -> None:
    odd = "reconciler/delivery#v1?x\\y%"
    ledger.record_event(event(odd, source="reconciler"))
    assert ledger.get_event(odd) == event(odd, source="reconciler")
    assert ledger.get_event(odd, service="delivery") == event(odd, source="reconciler")


# Digest claims -------------------------------------------------------------------------------

def test_first_claim_wins(ledger: Ledger) -> None:
    assert ledger.claim_digest("delivery", digest(7), "delivery-7", "v1.7.0", "e1") is True
    assert ledger.claim_digest("delivery", digest(7), "delivery-7", "v1.7.0", "e2") is False
    claim = ledger.digest_claim("delivery", digest(7))
    assert claim is not None
    assert (claim.release_id, claim.version, claim.event_id) == ("delivery-7", "v1.7.0", "e1")
    # Claims are per service: another service may release the same image.
    assert ledger.claim_digest("billing", digest(7), "billing-7", "v1.7.0", "e3") is True
    assert ledger.digest_claim("delivery", digest(8)) is None


def test_a_retried_claim_of_our_own_still_wins(ledger: Ledger) -> None:
    """The SDK retries an insert whose reply was lost; the conflict it then gets is ours."""
    assert ledger._claim("delivery", digest(9), "r", "v", "e1", token="mine") is True
    assert ledger._claim("delivery", digest(9), "r", "v", "e1", token="mine") is True
    assert ledger._claim("delivery", digest(9), "r", "v", "e1", token="theirs") is False


def test_concurrent_claims_have_exactly_one_winner_per_digest(ledger: Ledger) -> None:
    attempts = [n % 100 for n in range(200)]
    random.Random(7).shuffle(attempts)

    def claim(attempt: tuple[int, int]) -> tuple[int, str, bool]:
        index, n = attempt
        event_id = f"e{index}"
        return n, event_id, ledger.claim_digest("delivery", digest(n), f"delivery-{n}", "v1",
                                                event_id)

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(claim, enumerate(attempts)))
    winners = {n: event_id for n, event_id, won in results if won}
    assert sum(won for _, _, won in results) == 100
    assert sorted(winners) == list(range(100))
    assert ledger.seen_digests("delivery") == {digest(n) for n in range(100)}
    for n in (0, 42, 99):
        claim_record = ledger.digest_claim("delivery", digest(n))
        assert claim_record is not None and claim_record.event_id == winners[n]
    assert ledger.seen_digests("billing") == set()


# Releases ------------------------------------------------------------------------------------

def test_release_upsert_replaces_and_reads_back(ledger: Ledger) -> None:
    first = release("delivery-1")
    ledger.upsert_release(first)
    later = ReleaseRecord(
        "delivery-1", "delivery", first.version, first.digest, "WaitingForApproval",
        first.created_at, T0 + timedelta(minutes=5), environment="prod", step="approval",
        stages={"qa": StageState("Succeeded", T0, T0 + timedelta(minutes=4), "healthy"),
                "prod": StageState("WaitingForApproval", T0 + timedelta(minutes=5))},
    )
    ledger.upsert_release(later)
    ledger.upsert_release(later)
    assert ledger.get_release("delivery-1") == later
    assert ledger.get_release("delivery-1", service="delivery") == later
    assert ledger.get_release("delivery-2") is None
    assert len(ledger.releases()) == 1


def test_releases_by_service_and_state_newest_first(ledger: Ledger) -> None:
    ledger.upsert_release(release("d1", minutes=1, state="Completed"))
    ledger.upsert_release(release("d2", minutes=2, state="Superseded"))
    ledger.upsert_release(release("d3", minutes=3, state="Running"))
    ledger.upsert_release(release("b1", service="billing", minutes=4, state="WaitingForApproval"))
    ids = lambda records: [r.release_id for r in records]  # noqa: E731
    assert ids(ledger.releases()) == ["b1", "d3", "d2", "d1"]
    assert ids(ledger.releases("delivery")) == ["d3", "d2", "d1"]
    assert ids(ledger.releases("delivery", limit=1)) == ["d3"]
    assert ids(ledger.releases(state="Completed")) == ["d1"]
    assert ids(ledger.releases(state=["Running", "WaitingForApproval"])) == ["b1", "d3"]
    assert ids(ledger.releases("delivery", state=("Running", "WaitingForApproval"))) == ["d3"]
    assert ledger.releases("nobody") == []


def test_newest_releases_read_recent_rows_first_and_all_rows_when_too_few(
        ledger: Ledger) -> None:
    """Rows from the last 30 days answer a page; older ones are read only to fill it."""
    now = int((datetime.now(UTC) - T0).total_seconds() // 60)  # minutes after T0
    long_ago = now - 60 * 24 * 60
    for n in range(3):
        ledger.upsert_release(release(f"old{n}", minutes=long_ago + n))
        ledger.upsert_release(release(f"new{n}", minutes=now - 10 + n))
    lost_first_write = release("lost", minutes=now)  # a row with no CreatedAt: the merge only
    table = ledger.client.get_table_client(ledger.releases_table)
    entity = lost_first_write.to_entity()
    del entity["CreatedAt"]
    table.upsert_entity(entity)
    ids = lambda records: [r.release_id for r in records]  # noqa: E731
    assert ids(ledger.releases(limit=3)) == ["lost", "new2", "new1"]
    assert ids(ledger.releases(limit=5)) == ["lost", "new2", "new1", "new0", "old2"]
    assert ids(ledger.releases("delivery", state="Running", limit=100)) == [
        "lost", "new2", "new1", "new0", "old2", "old1", "old0"]


# Environments --------------------------------------------------------------------------------

def test_current_and_last_good_per_environment(ledger: Ledger) -> None:
    image = "myacr.azurecr.io/delivery@"
    assert ledger.environment_state("delivery", "prod") == EnvironmentState("delivery", "prod")

    ledger.set_current("delivery", "prod", "d1", digest(1), image + digest(1), at=T0)
    ledger.mark_good("delivery", "prod", "d1", digest(1), image + digest(1), at=T0)
    ledger.set_current("delivery", "prod", "d2", digest(2), image + digest(2),
                       at=T0 + timedelta(hours=1))
    state = ledger.environment_state("delivery", "prod")
    assert state.current is not None and state.last_good is not None
    assert (state.current.release_id, state.last_good.release_id) == ("d2", "d1")
    assert state.last_good.image == image + digest(1)
    assert state.current.since == T0 + timedelta(hours=1)

    # d2 fails verification: rollback restores the last good release.
    good = state.last_good
    ledger.set_current("delivery", "prod", good.release_id, good.digest, good.image)
    ledger.set_current("delivery", "prod", good.release_id, good.digest, good.image)
    state = ledger.environment_state("delivery", "prod")
    assert state.current is not None and state.current.release_id == "d1"
    assert state.last_good == good

    ledger.mark_good("delivery", "qa", "d2", digest(2), image + digest(2))
    assert [s.environment for s in ledger.environments("delivery")] == ["prod", "qa"]
    qa = ledger.environment_state("delivery", "qa")
    assert qa.current is None and qa.last_good is not None
    assert ledger.environments("billing") == []


def test_a_helm_deployment_keeps_chart_and_revision_until_a_deployment_without_them(
        ledger: Ledger) -> None:
    chart = DeployedChart("delivery", "2.0.0", "sha256:" + "c" * 64)
    image = "myacr.azurecr.io/delivery@"
    ledger.set_current("delivery", "prod", "d1", digest(1), image + digest(1), at=T0,
                       chart=chart, revision=4)
    ledger.mark_good("delivery", "prod", "d1", digest(1), image + digest(1), at=T0,
                     chart=chart, revision=4)
    state = ledger.environment_state("delivery", "prod")
    assert state.current is not None and state.last_good is not None
    assert (state.current.chart, state.current.revision) == (chart, 4)
    assert state.last_good == state.current

    ledger.set_current("delivery", "prod", "d0", digest(0), image + digest(0), at=T0)
    state = ledger.environment_state("delivery", "prod")
    assert state.current is not None and state.last_good is not None
    assert (state.current.release_id, state.current.chart, state.current.revision) == (
        "d0", None, None)
    assert (state.last_good.chart, state.last_good.revision) == (chart, 4)


# Connections, tables and failures ------------------------------------------------------------

def test_use_development_storage_targets_azurite_on_default_ports() -> None:
    dev = Ledger.from_connection_string("UseDevelopmentStorage=true", "devcheck")
    assert dev.endpoint == "http://127.0.0.1:10002/devstoreaccount1"
    key = dev.client.credential.named_key
    assert (key.name, key.key) == ("devstoreaccount1", ACCOUNT_KEY)
    # One client per process: the same account gives the same client, whatever the prefix.
    assert Ledger.from_connection_string("UseDevelopmentStorage=true").client is dev.client


def test_app_settings_give_a_working_ledger(azurite: Azurite) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    ledger = Ledger.from_app_settings({"AzureWebJobsStorage": azurite.connection_string,
                                       "LEDGER_TABLE_PREFIX": prefix})
    assert ledger.events_table == f"{prefix}Events"
    ledger.record_event(event("via-settings"))
    assert ledger.get_event("via-settings") is not None
    same = Ledger.from_app_settings({"AzureWebJobsStorage": azurite.connection_string})
    assert same.client is ledger.client
    assert same.prefix == "release"


def test_identity_based_settings_build_a_client_without_a_key() -> None:
    ledger = Ledger.from_app_settings({"AzureWebJobsStorage__accountName": "prodacct"})
    assert ledger.endpoint == "https://prodacct.table.core.windows.net"


def test_a_table_deleted_behind_our_back_is_recreated(ledger: Ledger, azurite: Azurite) -> None:
    ledger.record_event(event("before"))
    TableServiceClient.from_connection_string(azurite.connection_string).delete_table(
        ledger.events_table)
    ledger.record_event(event("after"))
    assert [e.event_id for e in ledger.events()] == ["after"]


def test_bad_prefix_and_connection_string_are_ledger_errors() -> None:
    with pytest.raises(LedgerError, match="prefix '9lives' is invalid"):
        Ledger.from_connection_string("UseDevelopmentStorage=true", "9lives")
    with pytest.raises(LedgerError, match="missing AccountName") as caught:
        Ledger.from_connection_string("DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0")
    assert "c2VjcmV0" not in str(caught.value)


def test_storage_down_is_a_ledger_error_and_a_restart_keeps_the_data(tmp_path: Path) -> None:
    emulator = Azurite(tmp_path / "azurite")
    with emulator:
        ports = emulator.ports
        ledger = Ledger.from_connection_string(emulator.connection_string, "down", retries=1)
        ledger.record_event(event("kept"))
        ledger.upsert_release(release("delivery-1"))
    calls = {
        "downEvents": lambda: ledger.record_event(event("lost")),
        "downReleases": lambda: ledger.get_release("delivery-1"),
        "downDigests": lambda: ledger.claim_digest("delivery", digest(1), "r", "v", "e"),
    }
    for table, call in calls.items():
        with pytest.raises(LedgerError) as caught:
            call()
        message = str(caught.value)
        assert f"on table {table} at http://127.0.0.1:{emulator.table_port}/" in message
        assert "storage unreachable" in message
        assert ACCOUNT_KEY not in message and "AccountKey" not in message
        assert caught.value.table == table
    assert caught.value.operation == f"claim digest {digest(1)} of delivery"
    # Back up on the same ports with its data: the same ledger carries on.
    with emulator:
        assert emulator.ports == ports
        assert ledger.get_event("kept") == event("kept")
        assert ledger.get_release("delivery-1") == release("delivery-1")
