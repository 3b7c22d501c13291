"""The ledger's per-delivery calls on the event loop: the aio Tables client, no thread hops.

`AsyncLedger` reads and writes the same tables, keys and entities as `store.Ledger` (which it
is made from, and which keeps every other call) for what runs once per delivery or release
step: recording events (inserted once, redeliveries counted), claiming digests and marking
which delivery started the claim's release, reading releases and environments, merging a
release's progress. One aio client per storage account and event loop. Azure errors become
the same `LedgerError`s as in `store`. Does not create or read approvals.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .errors import LedgerError
from .records import (
    EnvironmentState,
    EventRecord,
    ReleaseRecord,
    claim_entity,
    delivery_tokens,
    event_entity,
    event_partition,
    open_entity,
    progress_entity,
    redelivery_entity,
    start_mark_entity,
    table_key,
)
from .store import (
    CONNECTION_TIMEOUT,
    ETAG_ATTEMPTS,
    READ_TIMEOUT,
    WRITE_BACKOFF_S,
    WRITE_RETRIES,
    Ledger,
    _ready_tables,
    _table_missing,
    _transient,
    etag_backoff,
    log,
)

T = TypeVar("T")
PROXY_SETTINGS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                  "all_proxy")
NO_CONTENT = "return-no-content"  # an insert's echo of the entity is never read: skip it

# Keyed by the loop's id (with the loop, to drop entries of closed loops).
_clients: dict[tuple[Any, ...], tuple[asyncio.AbstractEventLoop, TableServiceClient]] = {}
_ledgers: dict[tuple[int, int], tuple[asyncio.AbstractEventLoop, AsyncLedger]] = {}
_closers: dict[int, AsyncGenerator[None, None]] = {}  # by id of the client each one closes


class AsyncLedger:
    """The async side of one `Ledger`: same account, same prefix, bound to one event loop."""

    def __init__(self, ledger: Ledger, client: TableServiceClient) -> None:
        self.ledger = ledger
        self.client = client
        self.retries = ledger.retries
        self._tables: dict[str, TableClient] = {}  # each one builds its own policy pipeline

    @classmethod
    def of(cls, ledger: Ledger) -> AsyncLedger:
        """The async ledger of `ledger` for the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        key = (id(loop), id(ledger))
        found = _ledgers.get(key)
        if found is None or found[0] is not loop or found[1].ledger is not ledger:
            _forget_closed_loops()
            found = _ledgers[key] = (loop, cls(ledger, _client(ledger, loop)))
        return found[1]

    # Events -------------------------------------------------------------------------------

    async def record_event(self, event: EventRecord) -> None:
        """Insert the event's row once; the same event id again is a redelivery, counted on it.

        One request for a first delivery. The row keeps its first outcome, reason and release
        (`redelivery_entity`); the count is merged with the row's ETag, so concurrent
        redeliveries each count exactly once, and a write retried after a lost reply finds
        its own token on the row instead of counting again.
        """
        token = uuid.uuid4().hex
        table, operation = self.ledger.events_table, f"record event {event.event_id}"
        step = "insert"
        failures = 0
        for attempt in range(ETAG_ATTEMPTS):
            try:
                step = await self._event_step(table, operation, event, token, step)
            except AzureError as error:
                failures += 1
                await self._after_failure(table, operation, error, failures)
                continue
            if step == "done":
                return
            if step == "merge":
                await asyncio.sleep(etag_backoff(attempt))
        raise self.ledger._contended(table, operation)

    async def _event_step(self, table: str, operation: str, event: EventRecord, token: str,
                          step: str) -> str:
        """One try at the event's row: `done`, or what to do next: `insert` (there is no row)
        or `merge` (the row changed under our merge: read it and count again)."""
        if step == "insert":
            try:
                await self._call(table, operation,
                                 lambda client: client.create_entity(
                                     event_entity(event, token), response_preference=NO_CONTENT),
                                 passthrough=True)
                return "done"
            except ResourceExistsError:
                pass
        found = await self._get_entity(table, operation, event_partition(event.service),
                                       table_key(event.event_id, "event id"), passthrough=True)
        if found is None:  # deleted since the conflict
            return "insert"
        if token in delivery_tokens(found):  # our own write landed; its reply was lost
            return "done"
        merged = await self._merge_unchanged(table, operation,
                                              redelivery_entity(found, event, token),
                                              str(found.metadata["etag"]))
        return "done" if merged else "merge"

    async def _after_failure(self, table: str, operation: str, error: AzureError,
                             failures: int) -> None:
        """Back off after a transient failure of a tokened write, or raise the LedgerError.

        The write may have landed with its reply lost: the next try's read shows its token.
        """
        retries = WRITE_RETRIES if self.retries is None else self.retries
        if not _transient(error) or failures > retries:
            raise self.ledger._error(table, operation, error) from error
        await asyncio.sleep(WRITE_BACKOFF_S * 2 ** (failures - 1))

    # Digest claims ------------------------------------------------------------------------

    async def claim_digest(
        self, service: str, digest: str, release_id: str, version: str, event_id: str,
        *, token: str | None = None,
    ) -> bool:
        """True for the first claim of this digest for this service, False for every later one."""
        return await self.claim(service, digest, release_id, version, event_id,
                                token=token) is not None

    async def claim(
        self, service: str, digest: str, release_id: str, version: str, event_id: str,
        *, token: str | None = None,
    ) -> str | None:
        """The ETag of the claim row when this is the first claim of the digest for the
        service (what `mark_started` takes), None for every later one.

        One insert; a conflict is the answer. Only when an attempt was retried (its reply lost)
        is the row read back: its token tells our own landed attempt from someone else's.
        """
        token = token or uuid.uuid4().hex
        entity = claim_entity(service, digest, release_id, version, event_id,
                              datetime.now(UTC), token)
        table, operation = self.ledger.digests_table, f"claim digest {digest} of {service}"
        retries = WRITE_RETRIES if self.retries is None else self.retries
        for attempt in range(retries + 1):
            try:
                written = await self._call(
                    table, operation,
                    lambda client: client.create_entity(entity, retry_total=0,
                                                        response_preference=NO_CONTENT),
                    passthrough=True)
                return str(written["etag"])
            except ResourceExistsError:
                if attempt == 0:
                    return None
                break
            except AzureError as error:
                if not _transient(error) or attempt == retries:
                    raise self.ledger._error(table, operation, error) from error
                await asyncio.sleep(WRITE_BACKOFF_S * 2 ** attempt)
        existing = await self._get_entity(table, operation, entity["PartitionKey"],
                                          entity["RowKey"])
        if existing is None or existing.get("ClaimToken") != token:
            return None
        return str(existing.metadata["etag"])

    async def mark_started(self, service: str, digest: str, event_id: str, *,
                           etag: str | None = None) -> bool:
        """Mark the digest's claim as started by this delivery: True for the first delivery
        that marks it, False for every other (one of them alone may answer `started`).

        A merge conditional on the claim row's ETag (`etag` from `claim` saves reading it);
        a row changed meanwhile is read again. A claim row that is gone (purged) leaves
        nobody to compete with: True.
        """
        token = uuid.uuid4().hex
        table, operation = self.ledger.digests_table, f"mark {digest} of {service} started"
        mark = start_mark_entity(service, digest, event_id, datetime.now(UTC), token)
        failures = 0
        for _ in range(ETAG_ATTEMPTS):
            try:
                if etag is None:
                    found = await self._get_entity(table, operation, mark["PartitionKey"],
                                                   mark["RowKey"], passthrough=True)
                    if found is None:
                        return True
                    if found.get("StartedBy"):
                        return found.get("StartToken") == token  # ours, if a reply was lost
                    etag = str(found.metadata["etag"])
                if await self._merge_unchanged(table, operation, mark, etag):
                    return True
            except AzureError as error:
                failures += 1
                await self._after_failure(table, operation, error, failures)
            etag = None  # the row changed (or a reply was lost): read it again
        raise self.ledger._contended(table, operation)

    async def seen_digests(self, service: str) -> set[str]:
        """Every digest claimed for the service: what the reconciler need not start again."""
        entities = await self._query(self.ledger.digests_table, f"list digests of {service}",
                                     "PartitionKey eq @service",
                                     {"service": table_key(service, "service")},
                                     select=["Digest"])
        return {entity["Digest"] for entity in entities}

    # Releases -----------------------------------------------------------------------------

    async def record_progress(self, record: Mapping[str, Any]) -> None:
        """Write one step of a release (the `record_release` input) in one request, no read.

        Its opening step (Running, no environment) inserts the row with its creation time;
        every later step, or an opening one retried, merges `progress_entity` into it.
        """
        table, operation = self.ledger.releases_table, f"record release {record['releaseId']}"
        if record["state"] == "Running" and not record.get("environment"):
            entity = open_entity(record)
            try:
                await self._call(table, operation,
                                 lambda client: client.create_entity(
                                     entity, response_preference=NO_CONTENT),
                                 passthrough=True)
                return
            except ResourceExistsError:
                pass
            except AzureError as error:
                raise self.ledger._error(table, operation, error) from error
        entity = progress_entity(record)
        await self._call(table, operation,
                         lambda client: client.upsert_entity(entity, mode=UpdateMode.MERGE))

    async def get_release(self, release_id: str, *, service: str) -> ReleaseRecord | None:
        """The release of the service, or None."""
        entity = await self._get(self.ledger.releases_table, f"get release {release_id}",
                                 table_key(service, "service"), table_key(release_id,
                                                                          "release id"))
        return None if entity is None else ReleaseRecord.from_entity(entity)

    async def releases(
        self, service: str, *, state: str | Iterable[str] | None = None,
        version: str | None = None,
    ) -> list[ReleaseRecord]:
        """The service's releases, newest first: those in one of `state`, or of `version`
        (either matches; neither given: all of them)."""
        clauses, parameters = ["PartitionKey eq @service"], {
            "service": table_key(service, "service")}
        states = [state] if isinstance(state, str) else list(state or [])
        names = [f"state{index}" for index in range(len(states))]
        matches = [f"State eq @{name}" for name in names]
        parameters.update(zip(names, states, strict=True))
        if version is not None:
            matches.append("Version eq @version")
            parameters["version"] = version
        if matches:
            clauses.append("( " + " or ".join(matches) + " )")
        entities = await self._query(self.ledger.releases_table, "list releases",
                                     " and ".join(clauses), parameters)
        records = [ReleaseRecord.from_entity(entity) for entity in entities]
        records.sort(key=lambda record: (record.created_at, record.release_id), reverse=True)
        return records

    # Environments -------------------------------------------------------------------------

    async def environment_state(self, service: str, environment: str) -> EnvironmentState:
        """Current and last good release (each None until recorded)."""
        entity = await self._get(self.ledger.environments_table,
                                 f"get {service} in {environment}",
                                 table_key(service, "service"),
                                 table_key(environment, "environment"))
        if entity is None:
            return EnvironmentState(service, environment)
        return EnvironmentState.from_entity(entity)

    # Plumbing -----------------------------------------------------------------------------

    async def _get(self, table: str, operation: str, partition: str,
                   row: str) -> dict[str, Any] | None:
        found = await self._get_entity(table, operation, partition, row)
        return None if found is None else dict(found)

    async def _get_entity(self, table: str, operation: str, partition: str, row: str, *,
                          passthrough: bool = False) -> TableEntity | None:
        """The row with its metadata (its ETag), or None."""
        async def get(client: TableClient) -> TableEntity | None:
            try:
                return await client.get_entity(partition, row)
            except ResourceNotFoundError as error:
                if _table_missing(error):
                    raise
                return None

        return await self._call(table, operation, get, passthrough=passthrough)

    async def _merge_unchanged(self, table: str, operation: str, entity: dict[str, Any],
                               etag: str) -> bool:
        """Merge `entity` into its row if the row still has `etag`; False when it changed.
        Other Azure errors pass through as they are."""
        try:
            await self._call(table, operation,
                             lambda client: client.update_entity(
                                 entity, mode=UpdateMode.MERGE, etag=etag,
                                 match_condition=MatchConditions.IfNotModified),
                             passthrough=True)
            return True
        except (ResourceModifiedError, ResourceNotFoundError):  # changed, or deleted
            return False

    async def _query(self, table: str, operation: str, query: str,
                     parameters: Mapping[str, Any],
                     select: list[str] | None = None) -> list[dict[str, Any]]:
        async def run(client: TableClient) -> list[dict[str, Any]]:
            pages = client.query_entities(query, parameters=dict(parameters), select=select)
            return [dict(entity) async for entity in pages]

        return await self._call(table, operation, run)

    async def _call(self, table: str, operation: str,
                    action: Callable[[TableClient], Awaitable[T]],
                    passthrough: bool = False) -> T:
        """Run `action` on the table (created on first use); Azure errors become LedgerError,
        or pass through as they are with `passthrough`."""
        for attempt in (1, 2):
            try:
                return await action(await self._table(table, operation))
            except AzureError as error:
                if _table_missing(error) and attempt == 1:
                    _ready_tables.discard((self.ledger.endpoint, table))
                    continue
                if passthrough:
                    raise
                raise self.ledger._error(table, operation, error) from error
        raise AssertionError("unreachable")

    async def _table(self, name: str, operation: str) -> TableClient:
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = self.client.get_table_client(name)
        if (self.ledger.endpoint, name) not in _ready_tables:
            try:
                await table.create_table()
                log.info("ledger: created table %s at %s", name, self.ledger.endpoint)
            except ResourceExistsError:
                pass
            except AzureError as error:
                raise self.ledger._error(name, operation, error,
                                         " (creating the table)") from error
            _ready_tables.add((self.ledger.endpoint, name))
        return table


async def close_clients() -> None:
    """Close the running loop's aio clients (a host or test ending); later calls make new ones."""
    loop = asyncio.get_running_loop()
    for key in [key for key, (owner, _) in _ledgers.items() if owner is loop]:
        del _ledgers[key]
    for key in [key for key, (owner, _) in _clients.items() if owner is loop]:
        client = _clients.pop(key)[1]
        generator = _closers.pop(id(client), None)
        if generator is not None:
            await generator.aclose()
        await client.close()


def _client(ledger: Ledger, loop: asyncio.AbstractEventLoop) -> TableServiceClient:
    """One aio client per account and event loop."""
    if ledger.source is None:
        raise LedgerError("this ledger was built from a client: make it with "
                          "Ledger.from_connection_string or from_app_settings to use it async")
    key = (id(loop), ledger.source, ledger.retries)
    found = _clients.get(key)
    if found is not None and found[0] is loop:
        return found[1]
    options: dict[str, Any] = {"transport": _transport()}
    if ledger.retries is not None:
        options.update(retry_total=ledger.retries, retry_backoff_factor=0.2)
    kind, where, client_id = ledger.source
    if kind == "connection":
        client = TableServiceClient.from_connection_string(where, **options)
    else:
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=client_id)
        client = TableServiceClient(where, credential=credential, **options)
    _clients[key] = (loop, client)
    _close_with_loop(loop, client)
    return client


def _close_with_loop(loop: asyncio.AbstractEventLoop, client: TableServiceClient) -> None:
    """Close `client` when its loop shuts down, not at garbage collection (which warns).

    A loop finalises the async generators started on it before it closes (`asyncio.run`
    does), so a started generator whose `finally` closes the client is a shutdown hook.
    """
    async def closer() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await client.close()

    generator = closer()
    _closers[id(client)] = generator  # the loop holds only a weak reference to it

    async def start() -> None:
        with contextlib.suppress(StopAsyncIteration):  # closed before it started
            await generator.__anext__()

    loop.create_task(start())


def _forget_closed_loops() -> None:
    """Drop the clients and ledgers of event loops that have ended (tests run many)."""
    for key in [key for key, (loop, _) in _ledgers.items() if loop.is_closed()]:
        del _ledgers[key]
    for key in [key for key, (loop, _) in _clients.items() if loop.is_closed()]:
        _closers.pop(id(_clients.pop(key)[1]), None)


def _transport() -> AioHttpTransport:
    """aiohttp, reading proxy settings from the environment only when some are set: otherwise
    every request would look for proxies and a netrc file in a worker thread."""
    use_env = any(os.environ.get(name) for name in PROXY_SETTINGS)
    return AioHttpTransport(use_env_settings=use_env, connection_timeout=CONNECTION_TIMEOUT,
                            read_timeout=READ_TIMEOUT)


__all__ = ["AsyncLedger", "close_clients"]
