"""Benchmark of webhook ingestion (`POST /api/registry/events`) through devhost over real HTTP.

Runs the product app (repo root) in `devhost.host.Host` with its ledger on a fresh Azurite and
a bench policy whose `burst` service does not supersede (each push is its own release, which
runs the `release` orchestration up to its QA gate) and whose images are in a local
docker-registry over TLS: every digest a delivery names is a real image pushed before the timed
part (sandbox/registry_push.py), because ingestion asks the registry about each new digest (one
GET of the tag's manifest, while the tag names it) before it starts a release. A load generator
in its own process (aiohttp, keep-alive, CONCURRENCY requests in flight) sends DELIVERIES ACR
push webhooks, half of them redeliveries of an earlier digest under a new event id, and times
each response; a shorter pass sends deliveries one at a time (latency without queueing). In the
same run the same request patterns go to `bench/apps/bare_http`, a function that only answers
202, served by a second Host: the baseline of /work/shared/notes/benchmarks.md. Outcomes in the
responses are counted (exactly half `started`, half `duplicate` expected), and the new releases
must all reach their gate. CPU is read per process (and per thread of this one) from /proc. One
registry question with nothing else running is timed too, against a bare HEAD, to show what the
check costs a new release.

Also prints the ceiling the server's CPU per delivery sets (one event loop, one core) and,
by Little's law, the throughput the p99 aim needs at CONCURRENCY in flight. When an aim is
missed, further passes with fresh digests time each stage in-process (handler, async ledger
calls, Durable client calls, activities), profile the event loop (by component too) and any
pool threads with cProfile, and time single ledger calls with nothing else running, to show
where the time goes. Prints figures and aims, asserts nothing, and ends with one
`ingest: key=value ...` summary line. Does not cover Event Grid deliveries, supersede, or the
releases after their gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import functools
import hashlib
import http.client
import io
import json
import multiprocessing
import os
import pstats
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

# The spawned load generator runs this file again with the parent's path, which lacks bench/.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import BENCH, REPO, print_aims, quiet  # noqa: E402  (sets the import path)

BARE_APP = BENCH / "apps" / "bare_http"
ROUTE = "/api/registry/events"
TOKEN = "bench-webhook-token"
SERVICE = "burst"
DELIVERIES = 1000  # half of them redeliveries
CONCURRENCY = 16
REDELIVERY_LAG = 32  # a digest's redelivery is queued this many pushes after its first delivery
WARMUPS = 40  # deliveries (half redeliveries) per host before timing
ALONE_DELIVERIES = 100  # one at a time: latency without queueing
PROFILE_DELIVERIES = 300
ANATOMY_CALLS = 100
GATE_WAIT_S = 30.0  # how long to wait for the measured releases to reach their gate
# The team's aims (notes/benchmarks.md): one delivery at a time p99 under 25 ms; the burst loses
# nothing, answers no 5xx and sustains 100 deliveries/s on 2 cores shared with Azurite. The
# earlier "p99 within 2x of bare, 200/s" is retired: at 16 in flight p99 is 16/throughput.
AIM_ALONE_P99_MS = 25.0
AIM_SUSTAINED_RPS = 100.0
AIM_RATIO_P99 = 2.0  # only for the Little's-law line: what the retired aim would need
REGISTRY_CALLS = 100
POLICY = """\
version: 1
registries:
  local: {{url: "{url}", auth: anonymous, caBundle: "{ca}"}}
services:
  burst:
    registry: local
    repository: burst
    supersede: {{waitingAtGate: false}}
    environments:
      - name: qa
        target:
          cluster: {{name: burst-qa, kubeconfigSecret: qa-kubeconfig}}
          namespace: burst
          deployment: burst
          container: app
        gate: {{approvers: {{users: [ann@example.com]}}, deadline: 72h}}
"""


# --- the request pattern -----------------------------------------------------------------------

def acr_push(event_id: str, tag: str, digest: str, host: str) -> str:
    return json.dumps({"id": event_id, "timestamp": "2026-11-22T04:10:12Z", "action": "push",
                       "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "digest": digest, "repository": SERVICE, "tag": tag},
                       "request": {"host": host}})


def deliveries(pusher: Any, label: str, count: int) -> list[str]:
    """Push count/2 images, then `count` bodies: one push event per image, each redelivered
    (new event id) REDELIVERY_LAG later."""
    pushes = count // 2
    tags = [f"v2.{i}.0" for i in range(pushes)]
    digests = pusher.push_images(SERVICE, tags, label)
    bodies = []
    for i in range(pushes + REDELIVERY_LAG):
        if i < pushes:
            bodies.append(acr_push(f"{label}-{i}", tags[i], digests[i], pusher.host))
        if i >= REDELIVERY_LAG:
            n = i - REDELIVERY_LAG
            bodies.append(acr_push(f"{label}-again-{n}", tags[n], digests[n], pusher.host))
    return bodies


def digest(label: str, n: int) -> str:
    """A made-up digest, for ledger rows written directly (never through ingestion)."""
    return "sha256:" + hashlib.sha256(f"{label}/{n}".encode()).hexdigest()


# --- the load generator (its own process, so its CPU is not the server's) --------------------

@dataclass
class Load:
    """One pass of deliveries against one URL, as the client saw it."""

    latencies_ms: list[float]
    statuses: list[int]
    outcomes: list[str | None]
    wall_s: float
    client_cpu_s: float

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.wall_s

    def percentile_ms(self, p: float, outcome: str | None = None) -> float:
        values = sorted(ms for ms, o in zip(self.latencies_ms, self.outcomes, strict=True)
                        if outcome is None or o == outcome)
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

    def count(self, outcome: str) -> int:
        return self.outcomes.count(outcome)


def run_load(url: str, bodies: list[str], concurrency: int) -> Load:
    """Entry point of the load-generator process."""
    return asyncio.run(_load(url, bodies, concurrency))


async def _load(url: str, bodies: list[str], concurrency: int) -> Load:
    n = len(bodies)
    latencies, statuses, outcomes = [0.0] * n, [0] * n, [None] * n
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    next_index = iter(range(n))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            for i in next_index:
                data = bodies[i].encode()
                started = time.perf_counter()
                async with http.post(url, data=data, headers=headers) as response:
                    text = await response.read()
                latencies[i] = (time.perf_counter() - started) * 1000
                statuses[i] = response.status
                if text.strip():
                    events = json.loads(text).get("events") or [{}]
                    outcomes[i] = events[0].get("outcome")

        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return Load(latencies, statuses, outcomes, wall, cpu)


# --- processes' CPU -----------------------------------------------------------------------------

def child_pids(word: bytes) -> list[int]:
    """Child processes of this one whose command line mentions `word`."""
    pids = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            with contextlib.suppress(OSError):
                if word in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
    return pids


def helper_pids() -> dict[str, list[int]]:
    """The processes beside the server whose CPU a delivery costs too."""
    return {"Azurite": child_pids(b"azurite"), "docker-registry": child_pids(b"docker-registry")}


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's live threads, by thread name without its `_N` suffix."""
    ticks = os.sysconf("SC_CLK_TCK")
    groups: dict[str, float] = defaultdict(float)
    for thread in threading.enumerate():
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            groups[re.sub(r"_\d+$", "", thread.name)] += (int(fields[11]) + int(fields[12])) / ticks
    return groups


@dataclass
class Pass:
    """A load, and the CPU the server process (by thread), Azurite and the registry spent
    meanwhile."""

    load: Load
    server_cpu_s: float
    helpers_cpu_s: dict[str, float]
    threads_cpu_s: dict[str, float]


async def measured(pool: ProcessPoolExecutor, url: str, bodies: list[str],
                   helpers: dict[str, list[int]], concurrency: int = CONCURRENCY) -> Pass:
    loop = asyncio.get_running_loop()
    server_cpu, threads = time.process_time(), thread_cpu()
    before = {name: cpu_seconds(pids) for name, pids in helpers.items()}
    load = await loop.run_in_executor(pool, run_load, url, bodies, concurrency)
    after = thread_cpu()
    return Pass(load, time.process_time() - server_cpu,
                {name: cpu_seconds(pids) - before[name] for name, pids in helpers.items()},
                {name: after[name] - threads.get(name, 0.0) for name in after})


# --- where the time goes (only when an aim is missed) -----------------------------------------

@dataclass
class Stages:
    """Per stage: awaited ms of each call; for thread-pool calls also the ms run in the thread,
    and (when `profile_threads`) a cProfile of the pool threads."""

    awaited: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    in_thread: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    profile_threads: bool = False
    thread_profiles: dict[int, cProfile.Profile] = field(default_factory=dict)


@contextlib.contextmanager
def instrumented(stages: Stages) -> Iterator[None]:
    """Time the HTTP handlers, every `asyncio.to_thread` call, and the Durable client calls.

    Patches `asyncio.to_thread`, `Invoker.invoke` and `ClientDurable.exists/start` of this
    process for the block; nothing outside bench/ is changed on disk.
    """
    from devhost.invoker import Invoker
    from shared.ledger.aio import AsyncLedger
    from triggers.durable_adapter import ClientDurable

    saved_to_thread, saved_invoke = asyncio.to_thread, Invoker.invoke
    saved_async = {(owner, name, label): getattr(owner, name) for owner, names, label in (
        (ClientDurable, ("exists", "start"), "Durable client {} (HTTP to devhost)"),
        (AsyncLedger, ("claim", "mark_started", "record_event", "record_progress",
                       "environment_state", "get_release", "releases"),
         "AsyncLedger.{} (on the loop)"))
        for name in names}

    async def to_thread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        name = getattr(fn, "__qualname__", repr(fn))

        def run() -> Any:
            profile = None
            if stages.profile_threads:
                profile = stages.thread_profiles.setdefault(threading.get_ident(),
                                                            cProfile.Profile())
                profile.enable()
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages.in_thread[name].append((time.perf_counter() - started) * 1000)
                if profile is not None:
                    profile.disable()

        started = time.perf_counter()
        try:
            return await saved_to_thread(run)
        finally:
            stages.awaited[name].append((time.perf_counter() - started) * 1000)

    async def invoke(self: Any, function: Any, trigger_value: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await saved_invoke(self, function, trigger_value, **kwargs)
        finally:
            stages.awaited[f"function {function.name}"].append(
                (time.perf_counter() - started) * 1000)

    def timed_method(original: Callable[..., Any], stage: str) -> Callable[..., Any]:
        @functools.wraps(original)
        async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(self, *args, **kwargs)
            finally:
                stages.awaited[stage].append((time.perf_counter() - started) * 1000)
        return timed

    asyncio.to_thread = to_thread
    Invoker.invoke = invoke
    for (owner, name, label), original in saved_async.items():
        setattr(owner, name, timed_method(original, label.format(name)))
    try:
        yield
    finally:
        asyncio.to_thread = saved_to_thread
        Invoker.invoke = saved_invoke
        for (owner, name, _), original in saved_async.items():
            setattr(owner, name, original)


@dataclass
class Profiled:
    """The profiling passes: one delivery at a time, then CONCURRENCY in flight."""

    deliveries: int
    alone: Stages
    busy: Stages
    busy_pass: Pass
    loop_profile: cProfile.Profile
    pool_threads: int
    anatomy: dict[str, tuple[float, float]] = field(default_factory=dict)


async def profile_ingestion(pool: ProcessPoolExecutor, url: str, helpers: dict[str, list[int]],
                            pusher: Any) -> Profiled:
    alone, busy, loop_profile = Stages(), Stages(profile_threads=True), cProfile.Profile()
    alone_bodies = deliveries(pusher, "alone-profiled", PROFILE_DELIVERIES // 3)
    with instrumented(alone):
        await measured(pool, url, alone_bodies, helpers, concurrency=1)
    bodies = deliveries(pusher, "profiled", PROFILE_DELIVERIES)
    with instrumented(busy):
        loop_profile.enable()
        try:
            busy_pass = await measured(pool, url, bodies, helpers)
        finally:
            loop_profile.disable()
    pool_threads = sum(1 for t in threading.enumerate() if t.name.startswith("asyncio_"))
    return Profiled(len(bodies), alone, busy, busy_pass, loop_profile, pool_threads)


async def ledger_anatomy(connection_string: str, table_endpoint: str,
                         calls: int = ANATOMY_CALLS) -> dict[str, tuple[float, float]]:
    """Wall and process CPU ms of one ledger call as ingestion makes it (async, on the loop),
    one at a time with nothing else running, and of bare HTTP requests to Azurite's table port
    (answered without touching a table): what the Tables SDK adds to a round trip."""
    return await _anatomy(connection_string, table_endpoint, calls)


async def _anatomy(connection_string: str, table_endpoint: str, calls: int
                   ) -> dict[str, tuple[float, float]]:
    from shared.ledger.aio import AsyncLedger, close_clients
    from shared.ledger.records import EventRecord
    from shared.ledger.store import Ledger

    ledger = AsyncLedger.of(Ledger.from_connection_string(
        connection_string, "anatomy" + secrets.token_hex(3)))
    now = datetime.now(UTC)

    def event(i: int) -> EventRecord:
        return EventRecord(event_id=f"anatomy-{i}", received_at=now, source="acr", action="push",
                           registry="myacr.azurecr.io", repository=SERVICE, tag=f"v3.{i}.0",
                           digest=digest("anatomy", i), service=SERVICE, outcome="started",
                           reason="bench", release_id=f"{SERVICE}-anatomy")

    def step(i: int) -> dict[str, Any]:
        return {"releaseId": f"{SERVICE}-anatomy-{i}", "service": SERVICE, "version": "v3",
                "digest": digest("anatomy", i), "state": "WaitingForApproval",
                "environment": "qa", "step": "approval", "reason": None,
                "updatedAt": now.isoformat(), "stageState": "WaitingForApproval",
                "stageFinished": False}

    await ledger.record_event(event(-1))  # tables created, connection open
    await ledger.claim_digest(SERVICE, digest("anatomy", -1), "r", "v0", "e")
    await ledger.environment_state(SERVICE, "qa")
    await ledger.record_progress(step(-1))
    endpoint = urlsplit(table_endpoint)
    connection = http.client.HTTPConnection(endpoint.hostname or "127.0.0.1", endpoint.port)
    url = f"{endpoint.scheme}://{endpoint.netloc}{endpoint.path}/Tables"

    async def bare_request(_: int) -> None:
        connection.request("GET", f"{endpoint.path}/Tables")
        connection.getresponse().read()

    actions: dict[str, Callable[[int], Any]] = {
        "AsyncLedger.record_event (insert)": lambda i: ledger.record_event(event(i)),
        "AsyncLedger.claim_digest, first claim (insert)": lambda i: ledger.claim_digest(
            SERVICE, digest("anatomy", i), "r", "v0", "e"),
        "AsyncLedger.claim_digest, a duplicate (one 409)": lambda i: ledger.claim_digest(
            SERVICE, digest("anatomy", i), "r", "v0", "e"),
        "AsyncLedger.record_progress (merge)": lambda i: ledger.record_progress(step(i)),
        "AsyncLedger.environment_state (get)": lambda i: ledger.environment_state(SERVICE,
                                                                                  "qa"),
        "bare HTTP request to Azurite (http.client)": bare_request,
    }
    figures = {}
    async with aiohttp.ClientSession() as session:
        async def bare_aiohttp(_: int) -> None:
            async with session.get(url) as response:
                await response.read()

        actions["bare HTTP request to Azurite (aiohttp)"] = bare_aiohttp
        for name, action in actions.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(calls):
                await action(i)
            figures[name] = ((time.perf_counter() - wall) / calls * 1000,
                             (time.process_time() - cpu) / calls * 1000)
    connection.close()
    await close_clients()
    return figures


async def registry_anatomy(registry: Any, pusher: Any, calls: int = REGISTRY_CALLS
                           ) -> dict[str, tuple[float, float]]:
    """Wall and process CPU ms of what ingestion asks the registry about one new digest, one
    question at a time with nothing else running, and of a bare keep-alive HEAD of the same
    manifest: what the registry check costs a new release, and what the client adds."""
    from shared.ingest.image_check import ClientRegistry, quick_client
    from shared.registry.client import RegistryEndpoint

    endpoint = RegistryEndpoint(registry.endpoint, "anonymous", str(registry.tls.ca))
    client = quick_client(endpoint)
    tags = [f"v9.{i}.0" for i in range(calls)]
    digests = pusher.push_images(SERVICE, tags, "anatomy")
    asks = ClientRegistry()
    await asks.image(endpoint, SERVICE, digests[0], tags[0])  # connections open
    connection = http.client.HTTPSConnection("127.0.0.1", registry.port,
                                             context=registry.ssl_context())

    def bare_head(i: int) -> None:
        connection.request("HEAD", f"/v2/{SERVICE}/manifests/{digests[i]}",
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        connection.getresponse().read()

    async def timed(action: Callable[[int], Any]) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(calls):
            result = action(i)
            if asyncio.iscoroutine(result):
                await result
        return ((time.perf_counter() - wall) / calls * 1000,
                (time.process_time() - cpu) / calls * 1000)

    figures = {
        "ClientRegistry.image: GET of the tag's manifest (a thread)": await timed(
            lambda i: asks.image(endpoint, SERVICE, digests[i], tags[i])),
        "RegistryClient.manifest: GET by digest, verified": await timed(
            lambda i: client.manifest(SERVICE, digests[i])),
        "RegistryClient.manifest_digest: HEAD of the tag": await timed(
            lambda i: client.manifest_digest(SERVICE, tags[i])),
        "bare HEAD over one keep-alive connection (http.client)": await timed(bare_head),
    }
    connection.close()
    return figures


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def profile_report(p: Profiled) -> None:
    print(f"where the time goes: stages timed in-process; 'alone' = {PROFILE_DELIVERIES // 3}"
          f" deliveries one at a time, 'at {CONCURRENCY}' = {p.deliveries} deliveries"
          f" {CONCURRENCY} in flight (under cProfile); 'thread' = run time inside the"
          " to_thread pool, the rest of 'awaited' is waiting for a pool thread")
    n_alone = PROFILE_DELIVERIES // 3
    rows = [("stage", "per delivery", "alone p50", "alone thread", f"at {CONCURRENCY} p50",
             f"at {CONCURRENCY} p99", f"at {CONCURRENCY} thread", "ms/delivery")]
    for name, samples in sorted(p.busy.awaited.items(), key=lambda kv: -sum(kv[1])):
        rows.append((name, f"{len(p.alone.awaited.get(name, [])) / n_alone:.2f}",
                     f"{median(p.alone.awaited.get(name, [])):.1f}",
                     f"{median(p.alone.in_thread.get(name, [])):.1f}"
                     if name in p.alone.in_thread else "",
                     f"{median(samples):.1f}", f"{p99(samples):.1f}",
                     f"{median(p.busy.in_thread[name]):.1f}" if name in p.busy.in_thread else "",
                     f"{sum(samples) / p.deliveries:.1f}"))
    table(rows)
    print(f"to_thread pool: {p.pool_threads} threads started (asyncio's default); the ledger"
          " calls run on the event loop, a thread only reloads a changed policy file; sync"
          " activities (request_approval) run in devhost's activity pool")
    print()
    if p.anatomy:
        rows = [(f"one call at a time, nothing else running ({ANATOMY_CALLS} calls)", "wall ms",
                 "CPU ms in this process")]
        rows += [(name, f"{wall:.2f}", f"{cpu:.2f}") for name, (wall, cpu) in p.anatomy.items()]
        table(rows)
        print()
    print(f"server process CPU by thread at {CONCURRENCY} in flight, ms per delivery:"
          + "".join(f" {name}={seconds / p.deliveries * 1000:.2f}"
                    for name, seconds in sorted(p.busy_pass.threads_cpu_s.items(),
                                                key=lambda kv: -kv[1]) if seconds > 0))
    print()
    print_components("event-loop thread", p.loop_profile, p.deliveries)
    print_profile("event-loop thread", p.loop_profile, p.deliveries)
    threads = list(p.busy.thread_profiles.values())
    if threads:
        merged = pstats.Stats(threads[0])
        for profile in threads[1:]:
            merged.add(profile)
        print_profile("to_thread pool threads (ledger, policy)", merged, p.deliveries)


COMPONENTS = (  # first match of a profiled function's file wins
    ("Tables SDK (azure-data-tables)", ("azure/data/tables/",)),
    ("azure-core pipeline", ("azure/core/",)),
    ("Durable SDK (client, orchestrator replay)", ("azure/durable_functions/", "dateutil/")),
    ("devhost Durable engine (SQLite, history)", ("devhost/durable/",)),
    ("devhost HTTP and invoker", ("devhost/",)),
    ("azure.functions (request/response types)", ("azure/functions/",)),
    ("aiohttp (server and clients)", ("aiohttp/", "multidict/", "yarl/")),
    ("our code (shared/, triggers/, activities/, orchestrations/)",
     ("shared/", "triggers/", "activities/", "orchestrations/")),
    ("asyncio event loop", ("asyncio/", "selectors.py")),
    ("JSON", ("json/",)),
)


def print_components(title: str, profile: cProfile.Profile, n: int) -> None:
    """Own time per component, ms per delivery: socket sends count where they are made."""
    stats = pstats.Stats(profile)
    totals: dict[str, float] = defaultdict(float)
    for (path, _, function), (_, _, own, _, callers) in stats.stats.items():
        if path == "~":  # a C function: charge it to the component calling it most
            caller = max(callers.items(), key=lambda kv: kv[1][2], default=None)
            path = caller[0][0] if caller else "~"
            if "epoll" in function or "select" in function:
                totals["waiting in epoll (idle)"] += own
                continue
        name = next((label for label, parts in COMPONENTS
                     if any(part in path for part in parts)), "other (stdlib, SQLite calls, ...)")
        totals[name] += own
    print(f"{title}: own time by component, ms per delivery (under cProfile, which inflates"
          " Python-heavy parts):")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / n * 1000:7.2f}  {name}")
    print()


def print_profile(title: str, profile: cProfile.Profile | pstats.Stats, n: int,
                  top: int = 12) -> None:
    """Top functions by own time; C calls that release the GIL include waiting to get it back."""
    out = io.StringIO()
    stats = profile if isinstance(profile, pstats.Stats) else pstats.Stats(profile)
    stats.stream = out
    stats.sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    print(f"{title}: top {top} by own time over {n} deliveries"
          f" ({stats.total_tt:.2f} s in all profiled calls):")
    for line in lines[start:start + top + 1]:
        print("  " + short_path(line.rstrip()))
    print()


def short_path(line: str) -> str:
    for prefix in (str(REPO) + "/.venv/lib/python3.11/site-packages/", str(REPO) + "/",
                   os.path.dirname(os.__file__) + "/"):
        line = line.replace(prefix, "")
    return line


# --- the run ------------------------------------------------------------------------------------



@dataclass
class Results:
    ours: Pass
    bare: Pass
    ours_alone: Pass
    bare_alone: Pass
    gate_reached: int = 0
    gate_s: float = 0.0
    settle_cpu_s: float = 0.0  # server CPU after the load until the releases reached their gate
    registry: dict[str, tuple[float, float]] = field(default_factory=dict)  # registry_anatomy

    @property
    def sustained_rps(self) -> float:
        """Deliveries per second counting the time their releases took to reach the gate."""
        return len(self.ours.load.latencies_ms) / (self.ours.load.wall_s + self.gate_s)

    @property
    def total_cpu_ms(self) -> float:
        """Server CPU per delivery, the orchestrations that finished after the load included."""
        n = len(self.ours.load.latencies_ms)
        return (self.ours.server_cpu_s + self.settle_cpu_s) / n * 1000


async def at_gate(host: Any) -> int:
    statuses = host.engine.query(prefix=f"{SERVICE}-")
    return sum((s.get("customStatus") or {}).get("step") == "approval" for s in statuses)


async def settle(host: Any, expected: int) -> tuple[int, float]:
    """Wait until `expected` releases wait at their gate; how many did and how long it took."""
    started = time.perf_counter()
    waiting = await at_gate(host)
    while waiting < expected and time.perf_counter() - started < GATE_WAIT_S:
        await asyncio.sleep(0.25)
        waiting = await at_gate(host)
    return waiting, time.perf_counter() - started


async def run(root: Path, pool: ProcessPoolExecutor, connection_string: str,
              table_endpoint: str, registry: Any) -> tuple[Results, Profiled | None]:
    from devhost.durable.clock import VirtualClock
    from devhost.host import Host
    from sandbox.registry_push import RegistryPusher
    from shared.ledger.aio import close_clients

    policy = root / "policy.yaml"
    policy.write_text(POLICY.format(url=registry.endpoint, ca=registry.tls.ca))
    pusher = RegistryPusher.of(registry)
    os.environ.update({"AzureWebJobsStorage": connection_string,
                       "LEDGER_TABLE_PREFIX": "bench" + secrets.token_hex(4),
                       "RELEASE_POLICY_FILE": str(policy), "REGISTRY_WEBHOOK_TOKEN": TOKEN,
                       # the gate signs its approval links (no Teams webhook: nothing is sent)
                       "APPROVAL_SIGNING_KEY": secrets.token_urlsafe(48),
                       "APPROVAL_BASE_URL": "http://approvals.bench"})
    helpers = helper_pids()
    # The reconciler's timer must not catch the bench's images mid-pass: time stands still.
    ours_host = Host(REPO, port=0, data_dir=root / "devhost-ours", clock=VirtualClock())
    bare_host = Host(BARE_APP, port=0, data_dir=root / "devhost-bare")
    await ours_host.start()
    try:
        await bare_host.start()
        try:
            ours_url, bare_url = ours_host.base_url + ROUTE, bare_host.base_url + ROUTE
            releases = 0
            warmup = deliveries(pusher, "warmup", WARMUPS)
            for url in (bare_url, ours_url):  # connections, imports, tables, policy, registry
                warm = await measured(pool, url, warmup, helpers)
                if set(warm.load.statuses) - {200, 202}:
                    raise RuntimeError(f"{url}: warm-up answered {sorted(set(warm.load.statuses))}")
            releases += WARMUPS // 2
            await settle(ours_host, releases)

            alone = deliveries(pusher, "alone", ALONE_DELIVERIES)
            bare_alone = await measured(pool, bare_url, alone, helpers, concurrency=1)
            ours_alone = await measured(pool, ours_url, alone, helpers, concurrency=1)
            releases += ALONE_DELIVERIES // 2
            await settle(ours_host, releases)

            bodies = deliveries(pusher, "run", DELIVERIES)
            bare = await measured(pool, bare_url, bodies, helpers)
            ours = await measured(pool, ours_url, bodies, helpers)
            results = Results(ours, bare, ours_alone, bare_alone)
            cpu = time.process_time()
            waiting, results.gate_s = await settle(ours_host, releases + DELIVERIES // 2)
            results.settle_cpu_s = time.process_time() - cpu
            results.gate_reached = waiting - releases

            profiled = None
            if not aims_met(results):
                profiled = await profile_ingestion(pool, ours_url, helpers, pusher)
        finally:
            await bare_host.stop()
    finally:
        await ours_host.stop()
        await close_clients()
    results.registry = await registry_anatomy(registry, pusher)
    if profiled is not None:
        profiled.anatomy = await ledger_anatomy(connection_string, table_endpoint)
    return results, profiled


def aims(r: Results) -> list[tuple[str, bool]]:
    alone_p99 = r.ours_alone.load.percentile_ms(99)
    pushes = DELIVERIES // 2
    started, duplicates = r.ours.load.count("started"), r.ours.load.count("duplicate")
    errors = sum(status >= 500 for status in r.ours.load.statuses)
    return [
        (f"one at a time: p99 under {AIM_ALONE_P99_MS:.0f} ms: {alone_p99:.1f} ms",
         alone_p99 < AIM_ALONE_P99_MS),
        (f"none lost: exactly {pushes} started and {pushes} duplicate ({started} and"
         f" {duplicates}), {pushes} releases at their gate ({r.gate_reached})",
         started == pushes and duplicates == pushes and r.gate_reached == pushes),
        (f"no 5xx in the burst: {errors}", errors == 0),
        (f"sustained at least {AIM_SUSTAINED_RPS:.0f} deliveries/s: {r.sustained_rps:.0f}",
         r.sustained_rps >= AIM_SUSTAINED_RPS),
    ]


def aims_met(r: Results) -> bool:
    return all(met for _, met in aims(r))


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(row)).rstrip())


def report(r: Results) -> None:
    ours, bare = r.ours, r.bare
    n = len(ours.load.latencies_ms)
    rows = [("", "ours", "bare 202", "ratio")]
    for p in (50, 90, 99):
        a, b = ours.load.percentile_ms(p), bare.load.percentile_ms(p)
        rows.append((f"p{p} ms", f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}"))
    a, b = r.ours_alone.load, r.bare_alone.load
    rows += [
        ("max ms", f"{max(ours.load.latencies_ms):.1f}", f"{max(bare.load.latencies_ms):.1f}",
         ""),
        ("requests/s", f"{ours.load.rps:.0f}", f"{bare.load.rps:.0f}",
         f"{ours.load.rps / bare.load.rps:.2f}"),
        (f"wall s ({n} requests)", f"{ours.load.wall_s:.2f}", f"{bare.load.wall_s:.2f}", ""),
        ("p50 / p99 ms of started", f"{ours.load.percentile_ms(50, 'started'):.1f} / "
         f"{ours.load.percentile_ms(99, 'started'):.1f}", "", ""),
        ("p50 / p99 ms of duplicate", f"{ours.load.percentile_ms(50, 'duplicate'):.1f} / "
         f"{ours.load.percentile_ms(99, 'duplicate'):.1f}", "", ""),
        ("statuses", statuses(ours.load), statuses(bare.load), ""),
        ("started / duplicate", f"{ours.load.count('started')} / "
         f"{ours.load.count('duplicate')}", "", ""),
        ("server process CPU ms/request", f"{ours.server_cpu_s / n * 1000:.2f}",
         f"{bare.server_cpu_s / n * 1000:.2f}", ""),
        *((f"{name} CPU ms/request", f"{ours.helpers_cpu_s[name] / n * 1000:.2f}",
           f"{bare.helpers_cpu_s[name] / n * 1000:.2f}", "") for name in ours.helpers_cpu_s),
        ("client CPU ms/request", f"{ours.load.client_cpu_s / n * 1000:.2f}",
         f"{bare.load.client_cpu_s / n * 1000:.2f}", ""),
        (f"one at a time: p50 / p99 ms ({len(a.latencies_ms)})",
         f"{a.percentile_ms(50):.1f} / {a.percentile_ms(99):.1f}",
         f"{b.percentile_ms(50):.1f} / {b.percentile_ms(99):.1f}",
         f"{a.percentile_ms(50) / b.percentile_ms(50):.2f}"),
        ("one at a time: requests/s", f"{a.rps:.0f}", f"{b.rps:.0f}", ""),
    ]
    table(rows)
    print()
    print(f"{n} deliveries, {CONCURRENCY} in flight, keep-alive; {n // 2} digests, each"
          f" redelivered (new event id) {REDELIVERY_LAG} pushes later; {os.cpu_count()} CPUs"
          " shared by client, devhost and Azurite")
    print("server process CPU by thread, ms per delivery:" + "".join(
        f" {name}={seconds / n * 1000:.2f}"
        for name, seconds in sorted(ours.threads_cpu_s.items(), key=lambda kv: -kv[1])
        if seconds > 0))
    print(f"releases at their gate {r.gate_s:.1f} s after the load: {r.gate_reached} of"
          f" {n // 2} (their orchestrations run during the load, in the same process)")
    print(f"sustained, counting until the releases reached their gate: {r.sustained_rps:.0f}"
          f" deliveries/s, {r.total_cpu_ms:.2f} ms of server CPU per delivery (the gate"
          " polls of this bench included)")
    per_delivery = ours.server_cpu_s / n * 1000
    p99_aim = AIM_RATIO_P99 * bare.load.percentile_ms(99)
    needed = CONCURRENCY / (p99_aim / 1000)
    print(f"ceiling: {per_delivery:.2f} ms of server CPU per delivery, on the one core its event"
          f" loop can use, allows at most {1000 / per_delivery:.0f} deliveries/s")
    print(f"Little's law at {CONCURRENCY} in flight: latency = {CONCURRENCY} / throughput, so a"
          f" p99 of {p99_aim:.1f} ms (2x bare) needs more than {needed:.0f} deliveries/s,"
          f" i.e. under {1000 / needed:.2f} ms of server CPU per delivery")
    print()
    if r.registry:
        rows = [(f"the registry check, one at a time ({REGISTRY_CALLS} new digests)", "wall ms",
                 "CPU ms in this process")]
        rows += [(name, f"{wall:.2f}", f"{cpu:.2f}") for name, (wall, cpu) in r.registry.items()]
        table(rows)
        print("a new release asks the registry once (one GET while the tag still names the"
              " digest, two when it moved); a redelivery of a release this process knows asks"
              " nothing")
        print()
    print_aims(aims(r))
    print()


def statuses(load: Load) -> str:
    counts: dict[int, int] = defaultdict(int)
    for status in load.statuses:
        counts[status] += 1
    return " ".join(f"{code}:{count}" for code, count in sorted(counts.items()))


def summary(r: Results) -> str:
    ours, bare = r.ours.load, r.bare.load
    registry_check = next(iter(r.registry.values()), (float("nan"), float("nan")))
    return ("ingest: "
            f"p50_ms={ours.percentile_ms(50):.1f} p99_ms={ours.percentile_ms(99):.1f}"
            f" rps={ours.rps:.0f} bare_p50_ms={bare.percentile_ms(50):.1f}"
            f" bare_p99_ms={bare.percentile_ms(99):.1f} bare_rps={bare.rps:.0f}"
            f" ratio_p99={ours.percentile_ms(99) / bare.percentile_ms(99):.2f}"
            f" started={ours.count('started')} duplicates={ours.count('duplicate')}"
            f" alone_p50_ms={r.ours_alone.load.percentile_ms(50):.1f}"
            f" bare_alone_p50_ms={r.bare_alone.load.percentile_ms(50):.1f}"
            f" gate_reached={r.gate_reached} sustained_rps={r.sustained_rps:.0f}"
            f" total_cpu_ms={r.total_cpu_ms:.2f}"
            f" registry_check_ms={registry_check[0]:.2f}"
            f" registry_check_cpu_ms={registry_check[1]:.2f}")


def main() -> None:
    from sandbox.azurite import Azurite
    from sandbox.registry import LocalRegistry
    from sandbox.tls import make_throwaway_cert

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as temp, \
            quiet("devhost", "devhost.invocations"), \
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        root = Path(temp)
        tls = make_throwaway_cert(root / "tls")
        with Azurite(root / "azurite") as azurite, \
                LocalRegistry(root / "registry", tls) as registry:
            results, profiled = asyncio.run(run(root, pool, azurite.connection_string,
                                                   azurite.table_endpoint, registry))
    report(results)
    if profiled is not None:
        profile_report(profiled)
    print(summary(results))


if __name__ == "__main__":
    main()
