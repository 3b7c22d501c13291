"""The release ledger on Azure Table Storage: events, digest claims, releases, environments.

Four tables named `<prefix>Events`, `<prefix>Digests`, `<prefix>Releases` and
`<prefix>Environments`, created on first use. Writes are idempotent, keyed by event id,
digest, release id or service+environment. Two are inserts whose conflict means something:
`claim_digest` (the conflict is the answer) and `record_event` (the conflict is a
redelivery, counted on the row with its ETag; the row's outcome is never rewritten).
One `TableServiceClient` per storage account and process.
What runs once per delivery or release step (ingestion, `record_release`) uses the async
side of the same ledger, `aio.AsyncLedger`, on the event loop instead.
Azure errors become `LedgerError`s naming operation and table; entity contents and
connection strings are never logged or put in messages.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from .connection import (
    DEFAULT_PREFIX,
    check_prefix,
    expand_connection_string,
    public_endpoint,
    storage_target,
    table_prefix,
)
from .errors import LedgerError
from .records import (
    UNMATCHED,
    DeployedChart,
    DigestClaim,
    EnvironmentState,
    EventRecord,
    ReleaseRecord,
    claim_entity,
    delivery_tokens,
    deployment_entity,
    event_entity,
    event_partition,
    redelivery_entity,
    table_key,
    utc,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_LIMIT = 100
RECENT_WINDOW = timedelta(days=30)  # `releases` reads this far back first
# Time-outs in seconds for one request; the SDK's retry policy wraps them.
CONNECTION_TIMEOUT = 10
READ_TIMEOUT = 30
# Our own retries of a write whose reply may be lost (the SDK does not retry POST or PATCH
# after a lost reply): a token on the row tells whether the first attempt landed.
WRITE_RETRIES = 3
WRITE_BACKOFF_S = 0.2
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
# A redelivery's count is merged with the row's ETag; when another write changed the row
# first it reads and tries again, after a jittered back-off that doubles up to the cap.
ETAG_ATTEMPTS = 20
ETAG_BACKOFF_S = 0.005
ETAG_BACKOFF_CAP_S = 0.2

_clients: dict[tuple[str, int | None], TableServiceClient] = {}
_clients_lock = threading.Lock()
_ready_tables: set[tuple[str, str]] = set()


def service_client(connection_string: str, retries: int | None = None) -> TableServiceClient:
    """The process's client for a connection string (`UseDevelopmentStorage=true` expanded)."""
    expanded = expand_connection_string(connection_string)
    key = (expanded, retries)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            options: dict[str, Any] = {
                "connection_timeout": CONNECTION_TIMEOUT, "read_timeout": READ_TIMEOUT,
            }
            if retries is not None:
                options.update(retry_total=retries, retry_backoff_factor=0.2)
            try:
                client = TableServiceClient.from_connection_string(expanded, **options)
            except ValueError:
                # The SDK's message is generic; never echo the string itself.
                raise LedgerError(
                    "storage connection string is missing AccountName/AccountKey, "
                    "SharedAccessSignature or a table endpoint"
                ) from None
            _clients[key] = client
        return client


class Ledger:
    """Reads and writes the ledger tables of one storage account under one name prefix."""

    def __init__(self, client: TableServiceClient, prefix: str = DEFAULT_PREFIX, *,
                 source: tuple[str, str, str | None] | None = None,
                 retries: int | None = None) -> None:
        self.client = client
        # ("connection", string, None) or ("identity", endpoint, client id): what `aio` needs.
        self.source = source
        self.retries = retries
        self._tables: dict[str, TableClient] = {}
        self.prefix = check_prefix(prefix)
        self.endpoint = public_endpoint(client.url)
        self.events_table = f"{prefix}Events"
        self.digests_table = f"{prefix}Digests"
        self.releases_table = f"{prefix}Releases"
        self.environments_table = f"{prefix}Environments"
        credential = getattr(client, "credential", None)
        self._secret = (
            credential.named_key.key if isinstance(credential, AzureNamedKeyCredential) else None
        )

    @classmethod
    def from_connection_string(
        cls, connection_string: str, prefix: str = DEFAULT_PREFIX, *, retries: int | None = None
    ) -> Ledger:
        """A ledger on the account of `connection_string`; `retries` overrides the SDK's count."""
        return cls(service_client(connection_string, retries), prefix,
                   source=("connection", expand_connection_string(connection_string), None),
                   retries=retries)

    @classmethod
    def from_app_settings(cls, settings: Mapping[str, str] | None = None) -> Ledger:
        """A ledger from `AzureWebJobsStorage` and `LEDGER_TABLE_PREFIX` (`os.environ` default)."""
        settings = os.environ if settings is None else settings
        prefix = table_prefix(settings)
        target = storage_target(settings)
        if target.connection_string is not None:
            return cls.from_connection_string(target.connection_string, prefix)
        assert target.table_endpoint is not None
        return cls(_identity_client(target.table_endpoint, target.client_id), prefix,
                   source=("identity", target.table_endpoint, target.client_id))

    @property
    def table_names(self) -> tuple[str, str, str, str]:
        return (self.events_table, self.digests_table, self.releases_table,
                self.environments_table)

    # Events -------------------------------------------------------------------------------

    def record_event(self, event: EventRecord) -> None:
        """Insert the event's row once; the same event id again is a redelivery, counted on it.

        The row keeps its first outcome, reason and release (`redelivery_entity`); the count
        is merged with the row's ETag, so concurrent redeliveries each count exactly once,
        and a write retried after a lost reply finds its own token on the row.
        """
        token = uuid.uuid4().hex
        table, operation = self.events_table, f"record event {event.event_id}"
        step, failures = "insert", 0
        for attempt in range(ETAG_ATTEMPTS):
            try:
                step = self._event_step(table, operation, event, token, step)
            except AzureError as error:
                failures += 1
                retries = WRITE_RETRIES if self.retries is None else self.retries
                if not _transient(error) or failures > retries:
                    raise self._error(table, operation, error) from error
                time.sleep(WRITE_BACKOFF_S * 2 ** (failures - 1))  # landed? the token tells
                continue
            if step == "done":
                return
            if step == "merge":
                time.sleep(etag_backoff(attempt))
        raise self._contended(table, operation)

    def _event_step(self, table: str, operation: str, event: EventRecord, token: str,
                    step: str) -> str:
        """One try at the event's row: `done`, or what to do next: `insert` (there is no row)
        or `merge` (the row changed under our merge: read it and count again)."""
        raw = AzureError  # every Azure error reaches `record_event`, which decides
        if step == "insert":
            try:
                self._call(table, operation,
                           lambda client: client.create_entity(event_entity(event, token)),
                           passthrough=raw)
                return "done"
            except ResourceExistsError:
                pass
        found = self._get_entity(table, operation, event_partition(event.service),
                                 table_key(event.event_id, "event id"), passthrough=raw)
        if found is None:  # deleted since the conflict
            return "insert"
        if token in delivery_tokens(found):  # our own write landed; its reply was lost
            return "done"
        merge = redelivery_entity(found, event, token)
        try:
            self._call(table, operation,
                       lambda client: client.update_entity(
                           merge, mode=UpdateMode.MERGE, etag=found.metadata["etag"],
                           match_condition=MatchConditions.IfNotModified),
                       passthrough=raw)
            return "done"
        except (ResourceModifiedError, ResourceNotFoundError):  # changed, or deleted
            return "merge"

    def get_event(self, event_id: str, *, service: str | None = None) -> EventRecord | None:
        """The event, or None; without `service` this scans all partitions (operator lookups)."""
        row_key = table_key(event_id, "event id")
        operation = f"get event {event_id}"
        if service is not None:
            entity = self._get(self.events_table, operation, event_partition(service), row_key)
            return None if entity is None else EventRecord.from_entity(entity)
        found = self._query(self.events_table, operation, "RowKey eq @row", {"row": row_key})
        return EventRecord.from_entity(found[0]) if found else None

    def events(
        self, service: str | None = None, *, limit: int = DEFAULT_LIMIT,
        since: datetime | None = None, unmatched: bool = False,
    ) -> list[EventRecord]:
        """Newest first: of one service, of events matching none (`unmatched`), or all."""
        clauses: list[str] = []
        parameters: dict[str, str | datetime] = {}
        if service is not None or unmatched:
            clauses.append("PartitionKey eq @partition")
            parameters["partition"] = UNMATCHED if unmatched else event_partition(service)
        if since is not None:
            clauses.append("ReceivedAt ge @since")
            parameters["since"] = utc(since)
        entities = self._query(self.events_table, "list events", " and ".join(clauses),
                               parameters)
        records = [EventRecord.from_entity(entity) for entity in entities]
        records.sort(key=lambda record: (record.received_at, record.event_id), reverse=True)
        return records[:limit]

    # Digest claims ------------------------------------------------------------------------

    def claim_digest(
        self, service: str, digest: str, release_id: str, version: str, event_id: str
    ) -> bool:
        """True for the first claim of this digest for this service, False for every later one."""
        return self._claim(service, digest, release_id, version, event_id, uuid.uuid4().hex)

    def _claim(
        self, service: str, digest: str, release_id: str, version: str, event_id: str,
        token: str,
    ) -> bool:
        entity = claim_entity(service, digest, release_id, version, event_id,
                              datetime.now(UTC), token)
        operation = f"claim digest {digest} of {service}"
        try:
            self._call(self.digests_table, operation,
                       lambda table: table.create_entity(entity), passthrough=ResourceExistsError)
            return True
        except ResourceExistsError:
            pass
        # A retried insert whose first attempt landed also conflicts: the token tells it apart.
        existing = self._get(self.digests_table, operation, entity["PartitionKey"],
                             entity["RowKey"])
        return existing is not None and existing.get("ClaimToken") == token

    def digest_claim(self, service: str, digest: str) -> DigestClaim | None:
        """Who claimed this digest for this service (the release it started), or None."""
        entity = self._get(self.digests_table, f"get claim of {digest} of {service}",
                           table_key(service, "service"), table_key(digest, "digest"))
        return None if entity is None else DigestClaim.from_entity(entity)

    def seen_digests(self, service: str) -> set[str]:
        """Every digest claimed for the service: what the reconciler need not start again."""
        entities = self._query(self.digests_table, f"list digests of {service}",
                               "PartitionKey eq @service",
                               {"service": table_key(service, "service")}, select=["Digest"])
        return {entity["Digest"] for entity in entities}

    # Releases -----------------------------------------------------------------------------

    def upsert_release(self, release: ReleaseRecord) -> None:
        """Write the release's row as given (replacing an earlier version of it)."""
        self._call(self.releases_table, f"upsert release {release.release_id}",
                   lambda table: table.upsert_entity(release.to_entity(), mode=UpdateMode.REPLACE))

    def get_release(self, release_id: str, *, service: str | None = None) -> ReleaseRecord | None:
        """The release, or None; without `service` this scans all partitions."""
        row_key = table_key(release_id, "release id")
        operation = f"get release {release_id}"
        if service is not None:
            entity = self._get(self.releases_table, operation, table_key(service, "service"),
                               row_key)
            return None if entity is None else ReleaseRecord.from_entity(entity)
        found = self._query(self.releases_table, operation, "RowKey eq @row", {"row": row_key})
        return ReleaseRecord.from_entity(found[0]) if found else None

    def releases(
        self, service: str | None = None, *, state: str | Iterable[str] | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[ReleaseRecord]:
        """Newest first (by creation), optionally of one service and in one or more states.

        Reads the rows of the last RECENT_WINDOW first, and the whole table only when those
        are fewer than `limit`: a ledger with years of releases is not read whole for a page.
        """
        clauses, parameters = [], {}
        if service is not None:
            clauses.append("PartitionKey eq @service")
            parameters["service"] = table_key(service, "service")
        states = [state] if isinstance(state, str) else list(state or [])
        if states:
            names = [f"state{index}" for index in range(len(states))]
            # The SDK substitutes @names in space-separated words: keep parentheses apart.
            clauses.append("( " + " or ".join(f"State eq @{name}" for name in names) + " )")
            parameters.update(zip(names, states, strict=True))
        since = datetime.now(UTC) - RECENT_WINDOW
        # A row whose first write was lost has no CreatedAt; it was created before its update.
        recent = "( CreatedAt ge @since or UpdatedAt ge @since )"
        entities = self._query(self.releases_table, "list releases",
                               " and ".join([*clauses, recent]), {**parameters, "since": since})
        records = [r for r in map(ReleaseRecord.from_entity, entities) if r.created_at >= since]
        if len(records) < limit:
            entities = self._query(self.releases_table, "list releases", " and ".join(clauses),
                                   parameters)
            records = [ReleaseRecord.from_entity(entity) for entity in entities]
        records.sort(key=lambda record: (record.created_at, record.release_id), reverse=True)
        return records[:limit]

    def releases_since(self, since: datetime, service: str | None = None) -> list[ReleaseRecord]:
        """Every release and operation row created or updated at `since` or later (of one
        service when given), oldest first: the table is filtered by the service, never read
        whole, however many rows it holds before `since`; every page of the window is read."""
        clauses = ["( CreatedAt ge @since or UpdatedAt ge @since )"]
        parameters: dict[str, Any] = {"since": utc(since)}
        if service is not None:
            clauses.insert(0, "PartitionKey eq @service")
            parameters["service"] = table_key(service, "service")
        entities = self._query(self.releases_table, "list releases since",
                               " and ".join(clauses), parameters)
        records = [ReleaseRecord.from_entity(entity) for entity in entities]
        records.sort(key=lambda record: (record.created_at, record.release_id))
        return records

    # Environments -------------------------------------------------------------------------

    def set_current(
        self, service: str, environment: str, release_id: str, digest: str, image: str,
        *, at: datetime | None = None, chart: DeployedChart | None = None,
        revision: int | None = None,
    ) -> None:
        """Record what now runs in the environment (deployed, or restored by a rollback);
        a Helm target's chart and revision with it."""
        self._set_slot("Current", service, environment, release_id, digest, image, at,
                       chart, revision)

    def mark_good(
        self, service: str, environment: str, release_id: str, digest: str, image: str,
        *, at: datetime | None = None, chart: DeployedChart | None = None,
        revision: int | None = None,
    ) -> None:
        """Record a verified release: what a later rollback in this environment restores."""
        self._set_slot("Good", service, environment, release_id, digest, image, at, chart,
                       revision)

    def environment_state(self, service: str, environment: str) -> EnvironmentState:
        """Current and last good release (each None until recorded)."""
        entity = self._get(self.environments_table, f"get {service} in {environment}",
                           table_key(service, "service"), table_key(environment, "environment"))
        if entity is None:
            return EnvironmentState(service, environment)
        return EnvironmentState.from_entity(entity)

    def environments(self, service: str) -> list[EnvironmentState]:
        """Every environment the service has a record in, by name."""
        entities = self._query(self.environments_table, f"list environments of {service}",
                               "PartitionKey eq @service",
                               {"service": table_key(service, "service")})
        states = [EnvironmentState.from_entity(entity) for entity in entities]
        return sorted(states, key=lambda state: state.environment)

    def _set_slot(
        self, slot: str, service: str, environment: str, release_id: str, digest: str,
        image: str, at: datetime | None, chart: DeployedChart | None, revision: int | None,
    ) -> None:
        entity = deployment_entity(slot, service, environment, release_id, digest, image,
                                   at or datetime.now(UTC), chart=chart, revision=revision)
        verb = "set current" if slot == "Current" else "mark good"
        self._call(self.environments_table, f"{verb} {release_id} for {service} in {environment}",
                   lambda table: table.upsert_entity(entity, mode=UpdateMode.MERGE))

    # Plumbing -----------------------------------------------------------------------------

    def _get(self, table: str, operation: str, partition: str, row: str) -> dict[str, Any] | None:
        found = self._get_entity(table, operation, partition, row)
        return None if found is None else dict(found)

    def _get_entity(self, table: str, operation: str, partition: str, row: str, *,
                    passthrough: type[AzureError] = ResourceNotFoundError) -> TableEntity | None:
        """The row with its metadata (its ETag), or None."""
        try:
            return self._call(table, operation,
                              lambda client: client.get_entity(partition, row),
                              passthrough=passthrough)
        except ResourceNotFoundError:
            return None

    def _query(
        self, table: str, operation: str, query: str, parameters: Mapping[str, Any],
        select: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        def run(client: TableClient) -> list[dict[str, Any]]:
            if not query:
                return [dict(entity) for entity in client.list_entities(select=select)]
            return [dict(entity) for entity in client.query_entities(
                query, parameters=dict(parameters), select=select)]

        return self._call(table, operation, run)

    def _call(
        self, table: str, operation: str, action: Callable[[TableClient], T],
        passthrough: type[AzureError] | tuple[type[AzureError], ...] | None = None,
    ) -> T:
        """Run `action` on the table (created on first use); Azure errors become LedgerError."""
        for attempt in (1, 2):
            try:
                return action(self._table(table, operation))
            except AzureError as error:
                if _table_missing(error) and attempt == 1:
                    # Deleted behind our back (or never made): create it and try once more.
                    _ready_tables.discard((self.endpoint, table))
                    continue
                if passthrough is not None and isinstance(error, passthrough):
                    raise
                raise self._error(table, operation, error) from error
        raise AssertionError("unreachable")

    def _table(self, name: str, operation: str) -> TableClient:
        table = self._tables.get(name)
        if table is None:  # each one builds its own policy pipeline: make it once
            table = self._tables[name] = self.client.get_table_client(name)
        if (self.endpoint, name) not in _ready_tables:
            try:
                table.create_table()
                log.info("ledger: created table %s at %s", name, self.endpoint)
            except ResourceExistsError:
                pass
            except AzureError as error:
                raise self._error(name, operation, error, " (creating the table)") from error
            _ready_tables.add((self.endpoint, name))
        return table

    def _contended(self, table: str, operation: str) -> LedgerError:
        return LedgerError(
            f"ledger: {operation} on table {table} at {self.endpoint} failed: the row changed"
            f" before each of {ETAG_ATTEMPTS} conditional updates (too many concurrent writes)",
            operation=operation, table=table,
        )

    def _error(
        self, table: str, operation: str, error: AzureError, during: str = ""
    ) -> LedgerError:
        reason = _reason(error)
        if self._secret:
            reason = reason.replace(self._secret, "***")
        return LedgerError(
            f"ledger: {operation} on table {table} at {self.endpoint} failed{during}: {reason}",
            operation=operation, table=table,
        )


def etag_backoff(attempt: int) -> float:
    """Seconds to wait before conditional update `attempt + 1`: full jitter, doubling, capped."""
    return random.uniform(0, min(ETAG_BACKOFF_CAP_S, ETAG_BACKOFF_S * 2 ** attempt))


def _transient(error: AzureError) -> bool:
    """A failure worth trying again: unreachable, no reply, throttled or a server error."""
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return True
    return isinstance(error, HttpResponseError) and error.status_code in TRANSIENT_STATUS


def _table_missing(error: AzureError) -> bool:
    if not isinstance(error, ResourceNotFoundError):
        return False
    # The SDK decodes the code for most calls, not for an insert: read its header then.
    code = getattr(error, "error_code", None)
    if code is None and error.response is not None:
        # azure-core types `response` as a protocol without headers; every transport's has them
        code = error.response.headers.get("x-ms-error-code")  # type: ignore[attr-defined]
    return code == "TableNotFound"


def _reason(error: AzureError) -> str:
    """A one-line cause: status and error code, or why the storage could not be reached."""
    first_line = (str(error.message or error).strip().splitlines() or [""])[0][:200]
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        code = getattr(error, "error_code", None)
        return f"HTTP {error.status_code}" + (f" {code}" if code else "") + f": {first_line}"
    if isinstance(error, ServiceRequestError):
        cause = first_line.rpartition("] ")[2] or first_line
        return f"storage unreachable ({cause})"
    return f"{type(error).__name__}: {first_line}"


def _identity_client(endpoint: str, client_id: str | None) -> TableServiceClient:
    """A cached client for an identity-based connection (managed identity or developer login)."""
    from azure.identity import DefaultAzureCredential

    key = (f"identity:{endpoint}:{client_id or ''}", None)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            credential = DefaultAzureCredential(managed_identity_client_id=client_id)
            client = TableServiceClient(
                endpoint, credential=credential,
                connection_timeout=CONNECTION_TIMEOUT, read_timeout=READ_TIMEOUT,
            )
            _clients[key] = client
        return client
