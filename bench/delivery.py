"""Benchmark of the delivery figures (DORA) of a 30-day window as the ledger grows.

On a fresh Azurite, ledgers of 1,000, 5,000 and 20,000 releases, one every 2 hours back
from now (so every ledger's last 30 days hold the same 360 releases, one in ten rolled back
in production, the others healthy with their push event and digest claim). Times
`read_delivery` (what `GET /api/metrics/delivery` runs) and counts the entities it reads
through the SDK's pipeline; the baseline in the same run computes the same figures from the
whole Releases table, as a read without the window filter would. Prints figures and aims,
asserts nothing, and ends with one `delivery: key=value ...` summary line.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.data.tables import TableServiceClient
from benchkit import print_aims  # before the project: sets the import path

from sandbox.azurite import Azurite
from sandbox.table_reads import EntityCounter
from shared.ledger.records import EventRecord, ReleaseRecord, StageState, claim_entity
from shared.ledger.store import Ledger
from shared.metrics.delivery import delivery_report, needing_push_times
from shared.metrics.from_ledger import push_times, read_delivery

SIZES = (1_000, 5_000, 20_000)
EVERY = timedelta(hours=2)
DAYS = 30
RUNS = 5
BATCH = 100
PRODUCTION = {"delivery": "prod"}


def seed(writer: TableServiceClient, prefix: str, size: int, now: datetime) -> int:
    """`size` releases back from `now`; the number in the last DAYS days."""
    releases, claims, events = [], [], []
    window = 0
    for index in range(size):
        created = now - (index + 1) * EVERY
        finished = created + timedelta(minutes=40)
        failed = index % 10 == 0
        row = ReleaseRecord(
            f"delivery-{index:016x}", "delivery", f"v1.{index}.0", f"sha256:{index:064x}",
            "RolledBack" if failed else "Completed", created, finished, environment="prod",
            stages={"prod": StageState("RolledBack" if failed else "Healthy",
                                       finished - timedelta(minutes=5), finished)})
        releases.append(row.to_entity())
        if finished >= now - timedelta(days=DAYS):
            window += 1
            claims.append(claim_entity("delivery", row.digest, row.release_id, row.version,
                                       f"push-{index}", created, "bench"))
            events.append(EventRecord(f"push-{index}", created - timedelta(minutes=1), "bench",
                                      "push", "registry.bench", "delivery", row.version,
                                      row.digest, "delivery", "started",
                                      release_id=row.release_id).to_entity())
    for table, entities in (("Releases", releases), ("Digests", claims), ("Events", events)):
        client = writer.create_table_if_not_exists(f"{prefix}{table}")
        for start in range(0, len(entities), BATCH):
            client.submit_transaction([("create", e) for e in entities[start:start + BATCH]])
    return window


def measure(connection_string: str, size: int) -> dict[str, float]:
    now = datetime.now(UTC)
    prefix = "b" + uuid.uuid4().hex[:10]
    started = time.perf_counter()
    window = seed(TableServiceClient.from_connection_string(connection_string), prefix, size,
                  now)
    seeded_s = time.perf_counter() - started
    counter = EntityCounter()
    ledger = Ledger(TableServiceClient.from_connection_string(
        connection_string, raw_response_hook=counter), prefix)
    read_delivery(ledger, PRODUCTION, DAYS, now=now)  # tables known, connections open

    def windowed() -> Any:
        return read_delivery(ledger, PRODUCTION, DAYS, now=now)

    def whole_table() -> Any:
        table = ledger.client.get_table_client(ledger.releases_table)
        rows = [ReleaseRecord.from_entity(entity) for entity in table.list_entities()]
        since = now - timedelta(days=DAYS)
        wanted = needing_push_times(rows, PRODUCTION, since, now)
        return delivery_report(rows, PRODUCTION, push_times(ledger, wanted), since=since,
                               until=now)

    results: dict[str, float] = {"size": size, "window_rows": window, "seed_s": seeded_s}
    for name, run in (("window", windowed), ("whole", whole_table)):
        times, reports = [], []
        for _ in range(RUNS):
            counter.reset()
            began = time.perf_counter()
            reports.append(run())
            times.append((time.perf_counter() - began) * 1000)
        results[f"{name}_ms"] = statistics.median(times)
        results[f"{name}_entities"] = sum(counter.entities.values())
        results[f"{name}_releases_read"] = counter.entities[f"{prefix}Releases"]
        results[f"{name}_deployments"] = reports[-1].all.deployments
    return results


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="delivery-bench-") as temp, \
            Azurite(Path(temp) / "azurite") as azurite:
        results = [measure(azurite.connection_string, size) for size in SIZES]
    print(f"{'ledger':>8} {'in window':>9} {'window ms':>10} {'read':>6} "
          f"{'whole table ms':>15} {'read':>6} {'ratio':>6}")
    for r in results:
        print(f"{r['size']:>8.0f} {r['window_rows']:>9.0f} {r['window_ms']:>10.1f} "
              f"{r['window_entities']:>6.0f} {r['whole_ms']:>15.1f} {r['whole_entities']:>6.0f} "
              f"{r['whole_ms'] / r['window_ms']:>5.1f}x")
    first, last = results[0], results[-1]
    same = all(r["window_deployments"] == r["whole_deployments"] for r in results)
    flat = last["window_ms"] / first["window_ms"]
    print_aims([
        (f"the window's figures read only its rows ({last['window_releases_read']:.0f} "
         f"release rows of {last['size']:.0f})",
         all(r["window_releases_read"] == r["window_rows"] for r in results)),
        (f"their time flat in the ledger's size ({flat:.2f}x from {first['size']:.0f} to "
         f"{last['size']:.0f} releases; aim ≤ 1.5x)", flat <= 1.5),
        ("the same figures as from the whole table", same),
    ])
    print("delivery: " + " ".join(
        f"window_ms_{r['size']:.0f}={r['window_ms']:.1f} whole_ms_{r['size']:.0f}="
        f"{r['whole_ms']:.1f}" for r in results)
        + f" window_rows={last['window_rows']:.0f} entities_read={last['window_entities']:.0f}"
        f" same_figures={same}")


if __name__ == "__main__":
    sys.exit(main())
