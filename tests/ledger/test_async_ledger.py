"""The ledger's async side against real Azurite: one request per claim and per release step,
the same rows the sync side reads, a lost reply, and storage down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient

from sandbox.azurite import ACCOUNT_KEY, Azurite
from shared.ledger import EventRecord, Ledger, LedgerError, ReleaseRecord, StageState
from shared.ledger.aio import AsyncLedger, close_clients

T = TypeVar("T")
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
DIGEST = "sha256:" + "d" * 64


class CountingTransport(AioHttpTransport):
    """Counts requests; can lose the reply of the first insert (or, with `lose_method`, the
    first request of that method) into one table: the request landed, its reply did not."""

    def __init__(self, lose_reply_of: str | None = None) -> None:
        super().__init__(use_env_settings=False)
        self.requests: list[tuple[str, str]] = []
        self.lose_reply_of = lose_reply_of
        self.lose_method = "POST"

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.requests.append((request.method, request.url.split("?")[0].rsplit("/", 1)[-1]))
        response = await super().send(request, **kwargs)
        table = request.url.split("?")[0].rsplit("/", 1)[-1].split("(")[0]
        if self.lose_reply_of and request.method == self.lose_method and \
                table == self.lose_reply_of:
            self.lose_reply_of = None
            raise ServiceResponseError("connection reset before the reply (test)")
        return response


def run(ledger: Ledger, test: Callable[[AsyncLedger, CountingTransport], Awaitable[T]],
        transport: CountingTransport | None = None) -> T:
    """Run `test` on a fresh loop with an async ledger whose requests are counted."""
    async def main() -> T:
        counting = transport or CountingTransport()
        assert ledger.source is not None
        client = TableServiceClient.from_connection_string(ledger.source[1], transport=counting,
                                                           retry_total=1)
        async with client:
            async_ledger = AsyncLedger(ledger, client)
            await async_ledger.record_event(event("warm-up"))  # tables exist before counting
            for table in (ledger.digests_table, ledger.releases_table):
                await async_ledger._table(table, "test")
            counting.requests.clear()
            return await test(async_ledger, counting)

    return asyncio.run(main())


def event(event_id: str, outcome: str = "started", minutes: int = 0) -> EventRecord:
    return EventRecord(event_id=event_id, received_at=T0 + timedelta(minutes=minutes),
                       source="acr-webhook", action="push", registry="myacr.azurecr.io",
                       repository="delivery", tag="v1.4.2", digest=DIGEST, service="delivery",
                       outcome=outcome, reason="", release_id="delivery-dddd")


def step(state: str, minutes: int, environment: str | None = None, stage: str | None = None,
         *, finished: bool = False, step_name: str = "deploy",
         reason: str | None = None) -> dict[str, Any]:
    """A `record_release` input as the release orchestration's journal writes it."""
    return {"releaseId": "delivery-dddd", "service": "delivery", "version": "v1.4.2",
            "digest": DIGEST, "state": state, "environment": environment, "step": step_name,
            "reason": reason, "updatedAt": (T0 + timedelta(minutes=minutes)).isoformat(),
            "stageState": stage, "stageFinished": finished}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# Events ---------------------------------------------------------------------------------------

def test_a_first_delivery_is_one_insert_and_a_redelivery_keeps_its_outcome(
        ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> None:
        await async_ledger.record_event(event("e1"))
        assert transport.requests == [("POST", ledger.events_table)]
        await async_ledger.record_event(event("e1", "duplicate", minutes=3))

    run(ledger, test)
    assert ledger.get_event("e1") == replace(event("e1"), deliveries=2, last_delivered_at=at(3))


def test_concurrent_redeliveries_each_count_once(ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, _: CountingTransport) -> None:
        await async_ledger.record_event(event("e1"))
        await asyncio.gather(*(async_ledger.record_event(event("e1", "duplicate", minutes=n))
                               for n in range(1, 17)))

    run(ledger, test)
    stored = ledger.get_event("e1", service="delivery")
    assert stored is not None
    assert (stored.outcome, stored.deliveries, stored.last_delivered_at) == (
        "started", 17, at(16))


def test_the_started_delivery_wins_the_row_when_its_redelivery_recorded_first(
        ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, _: CountingTransport) -> None:
        await async_ledger.record_event(replace(event("e1", "duplicate", minutes=1),
                                                reason="exists", release_id="other"))
        await async_ledger.record_event(event("e1"))

    run(ledger, test)
    assert ledger.get_event("e1") == replace(event("e1"), deliveries=2, last_delivered_at=at(1))


def test_a_lost_reply_does_not_count_a_delivery_twice(ledger: Ledger) -> None:
    """The insert (then a redelivery's merge) landed but its reply was lost: the SDK's retry
    meets its own write, recognised by its token."""
    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> None:
        transport.lose_reply_of = ledger.events_table
        await async_ledger.record_event(event("e1"))
        assert [method for method, _ in transport.requests] == ["POST", "POST", "GET"]
        transport.lose_reply_of, transport.lose_method = ledger.events_table, "PATCH"
        await async_ledger.record_event(event("e1", "duplicate", minutes=1))
        assert transport.lose_reply_of is None  # the merge's reply was lost

    run(ledger, test)
    assert ledger.get_event("e1") == replace(event("e1"), deliveries=2, last_delivered_at=at(1))


# Digest claims --------------------------------------------------------------------------------

def test_the_first_claim_wins_and_a_duplicate_costs_one_request(ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> list[bool]:
        first = await async_ledger.claim_digest("delivery", DIGEST, "delivery-dddd", "v1", "e1")
        transport.requests.clear()
        second = await async_ledger.claim_digest("delivery", DIGEST, "delivery-dddd", "v1", "e2")
        assert transport.requests == [("POST", ledger.digests_table)]
        other = await async_ledger.claim_digest("billing", DIGEST, "billing-dddd", "v1", "e3")
        return [first, second, other]

    assert run(ledger, test) == [True, False, True]
    claim = ledger.digest_claim("delivery", DIGEST)
    assert claim is not None and (claim.event_id, claim.release_id) == ("e1", "delivery-dddd")


def test_a_claim_whose_reply_was_lost_still_wins(ledger: Ledger) -> None:
    """The insert landed but its reply did not: the retry's conflict is read back as ours."""
    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> list[bool]:
        transport.lose_reply_of = ledger.digests_table
        ours = await async_ledger.claim_digest("delivery", DIGEST, "delivery-dddd", "v1", "e1")
        assert transport.requests == [("POST", ledger.digests_table)] * 2 + [
            ("GET", transport.requests[-1][1])]
        theirs = await async_ledger.claim_digest("delivery", DIGEST, "delivery-dddd", "v1", "e2")
        return [ours, theirs]

    assert run(ledger, test) == [True, False]


def test_concurrent_claims_have_exactly_one_winner_per_digest(ledger: Ledger) -> None:
    digests = [f"sha256:{n:064x}" for n in range(5)]

    async def test(async_ledger: AsyncLedger, _: CountingTransport) -> list[tuple[str, bool]]:
        claims = [(d, async_ledger.claim_digest("delivery", d, "r", "v1", f"e{n}-{d[-4:]}"))
                  for n in range(8) for d in digests]
        won = await asyncio.gather(*(claim for _, claim in claims))
        return [(d, w) for (d, _), w in zip(claims, won, strict=True)]

    results = run(ledger, test)
    for d in digests:
        assert sum(won for digest, won in results if digest == d) == 1
    assert ledger.seen_digests("delivery") == set(digests)


def test_of_many_deliveries_exactly_one_marks_the_claim_started(ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> list[bool]:
        etag = await async_ledger.claim("delivery", DIGEST, "delivery-dddd", "v1", "e0")
        assert etag and await async_ledger.claim("delivery", DIGEST, "r", "v1", "e1") is None
        marks = [async_ledger.mark_started("delivery", DIGEST, f"e{n}") for n in range(1, 9)]
        return list(await asyncio.gather(
            async_ledger.mark_started("delivery", DIGEST, "e0", etag=etag), *marks))

    marked = run(ledger, test)
    assert sum(marked) == 1
    claim = ledger.digest_claim("delivery", DIGEST)
    assert claim is not None and claim.started_by == f"e{marked.index(True)}"


def test_the_claimer_marks_its_claim_in_one_request(ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> list[bool]:
        etag = await async_ledger.claim("delivery", DIGEST, "delivery-dddd", "v1", "e1")
        assert etag is not None
        transport.requests.clear()
        ours = await async_ledger.mark_started("delivery", DIGEST, "e1", etag=etag)
        assert [method for method, _ in transport.requests] == ["PATCH"]
        late = await async_ledger.mark_started("delivery", DIGEST, "e2", etag=etag)  # stale
        return [ours, late]

    assert run(ledger, test) == [True, False]
    claim = ledger.digest_claim("delivery", DIGEST)
    assert claim is not None and (claim.event_id, claim.started_by) == ("e1", "e1")


def test_a_mark_whose_reply_was_lost_is_still_ours(ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> list[bool]:
        etag = await async_ledger.claim("delivery", DIGEST, "delivery-dddd", "v1", "e1")
        transport.lose_reply_of, transport.lose_method = ledger.digests_table, "PATCH"
        ours = await async_ledger.mark_started("delivery", DIGEST, "e1", etag=etag)
        assert transport.lose_reply_of is None
        theirs = await async_ledger.mark_started("delivery", DIGEST, "e2")
        gone = await async_ledger.mark_started("delivery", "sha256:" + "0" * 64, "e3")
        return [ours, theirs, gone]

    assert run(ledger, test) == [True, False, True]  # no claim row: nobody to compete with


# Release steps --------------------------------------------------------------------------------

def test_each_release_step_is_one_request_and_reads_back_whole(ledger: Ledger) -> None:
    steps = [step("Running", 0, step_name="starting"),
             step("WaitingForApproval", 1, "qa", "WaitingForApproval", step_name="approval"),
             step("Running", 5, "qa", "Deploying"),
             step("Running", 7, "qa", "Healthy", finished=True),
             step("Running", 8, "prod", "Deploying"),
             step("Failed", 9, "prod", "Failed", finished=True, step_name="Failed",
                  reason="rollout timed out")]

    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> None:
        for record in steps:
            transport.requests.clear()
            await async_ledger.record_progress(record)
            assert len(transport.requests) == 1, transport.requests
        await async_ledger.record_progress(steps[-1])  # an activity run twice: the same row
        assert await async_ledger.get_release("delivery-dddd", service="delivery") == expected

    expected = ReleaseRecord(
        "delivery-dddd", "delivery", "v1.4.2", DIGEST, "Failed", T0, at(9), environment="prod",
        step="Failed", reason="rollout timed out",
        stages={"qa": StageState("Healthy", at(1), at(7)),
                "prod": StageState("Failed", at(8), at(9), "rollout timed out")})
    run(ledger, test)
    assert ledger.get_release("delivery-dddd") == expected
    assert list(ledger.get_release("delivery-dddd").stages) == ["qa", "prod"]
    assert [r.release_id for r in ledger.releases("delivery", state="Failed")] == [
        "delivery-dddd"]


def test_an_opening_step_run_again_keeps_the_creation_time(ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, _: CountingTransport) -> ReleaseRecord | None:
        await async_ledger.record_progress(step("Running", 0, step_name="starting"))
        await async_ledger.record_progress(step("WaitingForApproval", 2, "qa",
                                                "WaitingForApproval"))
        await async_ledger.record_progress(step("Running", 3, step_name="starting"))
        return await async_ledger.get_release("delivery-dddd", service="delivery")

    row = run(ledger, test)
    assert row is not None and (row.created_at, row.updated_at) == (T0, at(3))
    assert row.environment is None and row.stages == {
        "qa": StageState("WaitingForApproval", at(2))}


def test_whole_writes_and_merged_steps_mix(ledger: Ledger) -> None:
    """An operation rewrites the row whole (sync); the release then merges a step into it."""
    async def first(async_ledger: AsyncLedger, _: CountingTransport) -> None:
        await async_ledger.record_progress(step("Running", 0, step_name="starting"))
        await async_ledger.record_progress(step("Running", 1, "qa env", "Deploying"))

    run(ledger, first)
    row = ledger.get_release("delivery-dddd", service="delivery")
    assert row is not None and row.stages == {"qa env": StageState("Deploying", at(1))}
    ledger.upsert_release(replace(row, stages={
        "qa env": StageState("RolledBack", at(1), at(4), "rolled back by ann")},
        updated_at=at(4)))

    async def then(async_ledger: AsyncLedger, _: CountingTransport) -> None:
        await async_ledger.record_progress(step("Running", 6, "qa env", "Healthy",
                                                finished=True))
        await async_ledger.record_progress(step("Running", 7, "prod", "Deploying"))

    run(ledger, then)
    assert ledger.get_release("delivery-dddd") == ReleaseRecord(
        "delivery-dddd", "delivery", "v1.4.2", DIGEST, "Running", T0, at(7),
        environment="prod", step="deploy",
        stages={"qa env": StageState("Healthy", at(1), at(6)),
                "prod": StageState("Deploying", at(7))})


def test_a_step_for_a_row_never_opened_takes_its_earliest_time(ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, _: CountingTransport) -> None:
        await async_ledger.record_progress(step("WaitingForApproval", 2, "qa",
                                                "WaitingForApproval"))
        await async_ledger.record_progress(step("Running", 4, "qa", "Deploying"))

    run(ledger, test)
    row = ledger.get_release("delivery-dddd", service="delivery")
    assert row is not None and row.created_at == at(2)
    assert row.stages == {"qa": StageState("Deploying", at(2))}


def test_a_bad_release_state_is_refused_before_any_request(ledger: Ledger) -> None:
    async def test(async_ledger: AsyncLedger, transport: CountingTransport) -> None:
        with pytest.raises(ValueError, match="release state 'Paused'"):
            await async_ledger.record_progress(step("Paused", 1))
        assert transport.requests == []

    run(ledger, test)


# Events, releases, environments ---------------------------------------------------------------

def test_events_releases_and_environments_read_the_same_rows(ledger: Ledger) -> None:
    ledger.set_current("delivery", "prod", "delivery-1", DIGEST, "acr/delivery@x", at=T0)
    ledger.upsert_release(ReleaseRecord("delivery-1", "delivery", "v1", DIGEST, "Completed",
                                        T0, T0))
    ledger.upsert_release(ReleaseRecord("delivery-2", "delivery", "v2", DIGEST,
                                        "WaitingForApproval", at(1), at(1)))

    async def test(async_ledger: AsyncLedger, _: CountingTransport) -> None:
        await async_ledger.record_event(event("e1"))
        await async_ledger.record_event(event("e1", outcome="duplicate"))
        state = await async_ledger.environment_state("delivery", "prod")
        assert state == ledger.environment_state("delivery", "prod")
        assert state.current is not None and state.current.release_id == "delivery-1"
        waiting = await async_ledger.releases("delivery", state=("Running",
                                                                 "WaitingForApproval"))
        assert [r.release_id for r in waiting] == ["delivery-2"]
        assert await async_ledger.get_release("delivery-3", service="delivery") is None
        assert await async_ledger.seen_digests("delivery") == set()

    run(ledger, test)
    assert ledger.get_event("e1") == replace(event("e1"), deliveries=2)


def test_storage_down_is_a_ledger_error_without_the_key(tmp_path: Path) -> None:
    emulator = Azurite(tmp_path / "azurite")
    with emulator:
        ledger = Ledger.from_connection_string(emulator.connection_string, "downAsync",
                                               retries=0)
        asyncio.run(_record(ledger, event("kept")))  # tables made while it runs

    async def calls() -> list[LedgerError]:
        async_ledger = AsyncLedger.of(ledger)
        errors = []
        for call in (async_ledger.record_event(event("lost")),
                     async_ledger.claim_digest("delivery", DIGEST, "r", "v", "e"),
                     async_ledger.record_progress(step("Running", 0))):
            with pytest.raises(LedgerError) as caught:
                await call
            errors.append(caught.value)
        await close_clients()
        return errors

    errors = asyncio.run(calls())
    assert [error.table for error in errors] == ["downAsyncEvents", "downAsyncDigests",
                                                 "downAsyncReleases"]
    for error in errors:
        assert "storage unreachable" in str(error)
        assert ACCOUNT_KEY not in str(error) and "AccountKey" not in str(error)


async def _record(ledger: Ledger, record: EventRecord) -> None:
    await AsyncLedger.of(ledger).record_event(record)
    await close_clients()


def test_identity_based_settings_give_an_async_client_on_the_same_endpoint() -> None:
    async def build() -> tuple[str, str]:
        ledger = Ledger.from_app_settings({"AzureWebJobsStorage__accountName": "prodacct",
                                           "AzureWebJobsStorage__clientId": "cid"})
        async_ledger = AsyncLedger.of(ledger)
        assert AsyncLedger.of(ledger) is async_ledger  # one per ledger and loop
        url = async_ledger.client.url
        credential = type(async_ledger.client.credential).__name__
        await close_clients()
        return url, credential

    url, credential = asyncio.run(build())
    assert url.startswith("https://prodacct.table.core.windows.net")
    assert credential == "DefaultAzureCredential"
