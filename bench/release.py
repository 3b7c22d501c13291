"""Benchmark of the `release` orchestration end to end in devhost, against its own activity time.

Runs the product app (repo root) in `devhost.host.Host` on real parts: Azurite for the ledger,
the local OCI registry (docker-registry over TLS, images pushed with skopeo) for the prod/
promotion, and per service one Kubernetes API simulator (TLS, zero-time rollouts, in this
process) holding its Deployment in a `qa` and a `prod` namespace; kubeconfigs are local
secrets (`SECRETS__<ENV>__KUBECONFIG_<SERVICE>`). Measured:

1. PUSHES images pushed through the webhook, right after the host started (the first is the
   process's first release): a second registry, whose notifications call the app's
   `/api/registry/events` with the webhook token as `make run` wires it, holds the service
   `pushed`; each push is a skopeo copy of a new image, and the approval is the approver's
   JSON POST to the link the gate's custom status names. Timed: push -> the first write the
   QA simulator receives (the Deployment patch), and approval -> the first prod write
   (promotion included). "Push" is the earlier of skopeo's exit and the moment ingestion
   began (the release input's `trigger.receivedAt`): the registry may notify before skopeo
   exits. p50/p95 over the pushes.
2. one release at a time (QA, approval, promotion to prod/, prod) after warm-ups, started as
   ingestion starts it after a push (`release_input` from the policy, `engine.start_new` with
   the release id) and approved (a decision event, on the name its custom status gives) once
   its gate timer is in its history: wall time start -> Completed minus the approval wait
   (from the commit of the episode that started waiting to the raise), the sum of its
   activity times (devhost's `devhost.invocations` log: each activity's run at the invoker),
   and the rest, the orchestration overhead, split into orchestrator episodes (replay +
   commit, same log) and everything between (dispatch, queues, wake-ups); the history events
   of the release and its sub-orchestrations.
3. CONCURRENT releases of as many services (each its own Deployments) started at once and
   approved as they reach the gate (the bench looks every GATE_POLL_S): wall time and
   releases/s, against their activity time spread over the host's activity slots, with the
   CPU of each thread group and child process meanwhile.

Baseline (the activity time of the same release) and aims: /work/shared/notes/benchmarks.md.
The reconciler's timer is stopped (it would see the directly started releases' images as
never delivered). Prints figures and aims, asserts nothing, and ends with one
`release: key=value ...` summary line. Does not cover rollouts that take time, failures or
rollbacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import secrets
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from benchkit import app_host, print_aims  # before the project: sets the import path

from devhost.durable import history as h
from sandbox.azurite import Azurite
from sandbox.images import OciLayout, build_image, push
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles, make_throwaway_cert
from sandbox.tools import free_port
from shared.approvals.decisions import decision_data
from shared.cluster.clusters import forget
from shared.ingest.decisions import release_id
from shared.ingest.payloads import RegistryEvent
from shared.ingest.service import release_input
from shared.policy.loader import parse_policy

SERVICE = "delivery"
WEBHOOK_SERVICE = "pushed"  # in the registry that notifies the app
PUSHES = 20
WARMUPS = 2
RUNS = 5
CONCURRENT = 100
PUSH_THREADS = 8
TIMEOUT_S = 120.0
GATE_POLL_S = 0.1  # concurrent run: how often the bench looks for releases at their gate
TOKEN = "bench-release-admin"
OLD_IMAGE = "sandbox.example/app@sha256:" + "0" * 64
GATE_TIMER_AHEAD = timedelta(hours=1)  # the gate's reminder timer; retry timers are seconds
CONCURRENT_PREFIX = "svc"
ACTIVITY, ORCHESTRATOR = "activityTrigger", "orchestrator"
AIM_OVERHEAD_MS = 1000.0
AIM_HISTORY = 100
AIM_PUSH_TO_QA_MS = 250.0  # issue 14, item 8: push -> first QA write, of our own time
AIM_APPROVAL_TO_PROD_MS = 1000.0  # benchmarks note: reaction "well under a second"
SERVICE_TEMPLATE = """\
  {name}:
    registry: {registry}
    repository: {name}
    environments:
      - name: qa
        target:
          cluster: {{name: {name}, kubeconfigSecret: kubeconfig-{name}}}
          namespace: qa
          deployment: {name}
          container: app
        rolloutTimeout: 2m
      - name: prod
        target:
          cluster: {{name: {name}, kubeconfigSecret: kubeconfig-{name}}}
          namespace: prod
          deployment: {name}
          container: app
        rolloutTimeout: 2m
        gate: {{approvers: {{users: [ann@example.com]}}, deadline: 72h, reminderInterval: 24h}}
        promotion: {{namespace: prod/}}
"""


def service_names() -> list[str]:
    return [f"{CONCURRENT_PREFIX}{i:03d}" for i in range(CONCURRENT)]


def policy_text(registry: LocalRegistry, hooked: LocalRegistry, tls: TlsFiles) -> str:
    """One service for the one-at-a-time releases and CONCURRENT more in the `local` registry,
    one for the webhook pushes in the `hooked` one; all QA -> gate -> prod."""
    registries = "".join(f"  {name}: {{url: \"{r.endpoint}\", auth: anonymous,"
                         f" caBundle: \"{tls.ca}\"}}\n"
                         for name, r in (("local", registry), ("hooked", hooked)))
    return (f"version: 1\nregistries:\n{registries}services:\n"
            + SERVICE_TEMPLATE.format(name=WEBHOOK_SERVICE, registry="hooked")
            + "".join(SERVICE_TEMPLATE.format(name=n, registry="local")
                      for n in [SERVICE, *service_names()]))


# --- the invocation log: what ran, how long, when it ended --------------------------------------

@dataclass(frozen=True)
class Invocation:
    name: str
    kind: str
    ms: float
    ended: float  # time.time()
    ok: bool


class InvocationLog(logging.Handler):
    """Collects devhost's `name (kind) N ms Succeeded` lines; wakes whoever waits for an episode."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.entries: list[Invocation] = []
        self.episode = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        name, kind, ms = record.args[:3]
        self.entries.append(Invocation(str(name), str(kind), float(ms), record.created,
                                       record.levelno < logging.ERROR))
        if kind == ORCHESTRATOR:
            self.loop.call_soon_threadsafe(self.episode.set)

    def take(self) -> list[Invocation]:
        taken, self.entries = self.entries, []
        return taken


@contextmanager
def collecting(handler: InvocationLog) -> Iterator[None]:
    """Route `devhost.invocations` to `handler` only (nothing printed); quiet `devhost`."""
    invocations, host_log = logging.getLogger("devhost.invocations"), logging.getLogger("devhost")
    saved = (invocations.level, invocations.propagate, host_log.level)
    invocations.setLevel(logging.INFO)
    invocations.propagate = False
    invocations.addHandler(handler)
    host_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        invocations.removeHandler(handler)
        invocations.setLevel(saved[0])
        invocations.propagate = saved[1]
        host_log.setLevel(saved[2])


# --- figures -------------------------------------------------------------------------------------

@dataclass
class Release:
    """One release at a time: its times (ms) and history."""

    total_ms: float
    wait_ms: float
    activities: list[Invocation]
    episodes: list[Invocation]
    history: dict[str, Counter[str]]  # instance -> event type -> count

    @property
    def busy_ms(self) -> float:
        return self.total_ms - self.wait_ms

    @property
    def activities_ms(self) -> float:
        return sum(a.ms for a in self.activities)

    @property
    def episodes_ms(self) -> float:
        return sum(e.ms for e in self.episodes)

    @property
    def overhead_ms(self) -> float:
        return self.total_ms - self.wait_ms - self.activities_ms

    @property
    def between_ms(self) -> float:
        return self.overhead_ms - self.episodes_ms

    @property
    def history_events(self) -> int:
        return sum(sum(c.values()) for c in self.history.values())

    @property
    def failed(self) -> int:
        return sum(not e.ok for e in self.activities + self.episodes)


@dataclass
class Concurrent:
    wall_s: float = 0.0
    completed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    gate_s: list[float] = field(default_factory=list)  # start -> approved
    activities: list[Invocation] = field(default_factory=list)
    episodes: list[Invocation] = field(default_factory=list)
    history_events: list[int] = field(default_factory=list)
    slots: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)  # thread group or process -> s
    polling_s: float = 0.0  # the bench's own looks for releases at the gate, on the app's loop

    @property
    def per_s(self) -> float:
        return self.completed / self.wall_s


@dataclass(frozen=True)
class Push:
    """One image pushed through the webhook and approved: when each step happened
    (time.time())."""

    pushed: float  # skopeo exited
    received: float  # ingestion began (the release input's trigger.receivedAt)
    qa_write: float  # the QA simulator received its first write of this release
    approved: float  # the approver's POST went out
    answered: float  # ... and its answer came back
    prod_write: float  # the prod simulator received its first write of this release

    @property
    def start(self) -> float:
        """The push: the registry notifies once the manifest is stored, possibly before
        skopeo exits."""
        return min(self.pushed, self.received)

    @property
    def push_to_qa_ms(self) -> float:
        return (self.qa_write - self.start) * 1000

    @property
    def received_to_qa_ms(self) -> float:
        return (self.qa_write - self.received) * 1000

    @property
    def notified_ms(self) -> float:
        """skopeo's exit -> ingestion began (negative: the notification came first)."""
        return (self.received - self.pushed) * 1000

    @property
    def approval_to_prod_ms(self) -> float:
        return (self.prod_write - self.approved) * 1000

    @property
    def answer_ms(self) -> float:
        return (self.answered - self.approved) * 1000


# --- CPU by thread and by child process ------------------------------------------------------

def cpu_now() -> dict[str, float]:
    """CPU seconds so far of this process's live threads (by name without `_N`) and of its
    child processes (by command: Azurite's node, docker-registry)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def seconds(stat: Path) -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    found: Counter[str] = Counter()
    for thread in threading.enumerate():
        with suppress(OSError):
            name = re.sub(r"_\d+$", "", thread.name)
            found[f"thread {name}"] += seconds(Path(f"/proc/self/task/{thread.native_id}/stat"))
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            with suppress(OSError):
                command = Path(f"/proc/{pid}/comm").read_text().strip()
                found[f"process {command}"] += seconds(Path(f"/proc/{pid}/stat"))
    return dict(found)


def cpu_since(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in cpu_now().items() if v > before.get(k, 0.0)}


# --- set-up ---------------------------------------------------------------------------------------

class WatchedKube(KubeSimulator):
    """The simulator, noting when each write (POST, PUT, PATCH) arrives: how the bench sees
    the cluster receive the Deployment patch (the simulator serves no watch)."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.writes: list[tuple[float, str]] = []  # (time.time(), path)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method in ("POST", "PUT", "PATCH"):
            self.writes.append((time.time(), request.path))
        return await super()._handle(request)

    def first_write(self, namespace: str, since: float) -> float:
        """When the first write into `namespace` at or after `since` arrived."""
        return min(t for t, path in self.writes
                   if t >= since and f"/namespaces/{namespace}/" in path)


@contextmanager
def clusters(tls: TlsFiles) -> Iterator[dict[str, WatchedKube]]:
    """One simulator (TLS, zero-time rollouts) per service: every request of the simulator
    syncs every Deployment and sorts the whole store per list, so one simulator holding all
    2 x 102 Deployments answered each request in ~0.5 s (creating them took minutes)."""
    kubes = {name: WatchedKube(tls=tls, tokens={TOKEN: None}, rollout_seconds=0.0)
             for name in [SERVICE, WEBHOOK_SERVICE, *service_names()]}
    with ThreadPoolExecutor(PUSH_THREADS) as pool:
        try:
            list(pool.map(KubeSimulator.start, kubes.values()))
            yield kubes
        finally:
            list(pool.map(KubeSimulator.stop, kubes.values()))


def push_images(root: Path, registry: LocalRegistry, wanted: list[tuple[str, str]]
                ) -> dict[tuple[str, str], str]:
    """Build and push (service, tag) images (each its own content); their digests."""
    def one(item: tuple[str, str]) -> str:
        service, tag = item
        layout = build_image(root / "images" / f"{service}-{tag}", layer_sizes=[2048, 4096],
                             seed=f"{service}/{tag}", tag=tag)
        return push(layout, registry, service, tag)

    with ThreadPoolExecutor(PUSH_THREADS) as pool:
        return dict(zip(wanted, pool.map(one, wanted), strict=True))


def build_layouts(root: Path, service: str, tags: list[str]) -> list[OciLayout]:
    """Images (each its own content) to push later, built before anything is timed."""
    def one(tag: str) -> OciLayout:
        return build_image(root / "images" / f"{service}-{tag}", layer_sizes=[2048, 4096],
                           seed=f"{service}/{tag}", tag=tag)

    with ThreadPoolExecutor(PUSH_THREADS) as pool:
        return list(pool.map(one, tags))


def start_release(engine: Any, policy: Any, registry: LocalRegistry, service: str, tag: str,
                  digest: str) -> str:
    """What ingestion does once it decided to start: the input from the policy, start_new."""
    rid = release_id(service, digest)
    event = RegistryEvent(event_id=f"bench-{rid}", source="bench", action="push",
                          registry=registry.host, repository=service, tag=tag, digest=digest)
    payload = release_input(policy.service(service), event, rid, datetime.now(UTC))
    engine.start_new("release", rid, json.dumps(payload))
    return rid


def waiting_at_gate(engine: Any, rid: str) -> bool:
    """The release waits for its decision: the gate's timer (its reminder, hours ahead, not a
    retry's few seconds) is in its history."""
    soon = datetime.now(UTC) + GATE_TIMER_AHEAD
    return any(e["EventType"] == h.EventType.TIMER_CREATED
               and datetime.fromisoformat(e["FireAt"].replace("Z", "+00:00")) > soon
               for e in engine.store.history(rid))


def approve(engine: Any, rid: str) -> None:
    """Ann approves through her link, as the approval page would raise it."""
    event = engine.status(rid)["customStatus"]["waitingFor"]["event"]
    engine.raise_event(rid, event, json.dumps(decision_data(
        decision="approve", approver="ann@example.com", identities=["ann@example.com"],
        nonce=secrets.token_hex(16), at=datetime.now(UTC), event_id=secrets.token_hex(16),
        via="bench")))


def history_of(engine: Any, rid: str) -> dict[str, Counter[str]]:
    """Event types per instance: the release and its sub-orchestrations (`rid:env`)."""
    ids = [rid] + sorted(s["instanceId"] for s in engine.query(prefix=f"{rid}:"))
    return {i: Counter(h.EventType(e["EventType"]).name for e in engine.store.history(i))
            for i in ids}


def check_completed(rid: str, status: dict[str, Any]) -> None:
    output = status.get("output") or {}
    if status["runtimeStatus"] != "Completed" or output.get("outcome") != "Completed":
        raise RuntimeError(f"release {rid} ended {status['runtimeStatus']}: {output!r}")


# --- measuring ------------------------------------------------------------------------------------

async def until_at_gate(engine: Any, log: InvocationLog, rid: str) -> None:
    """Return once the release waits at its gate (it may not exist yet: a push starts it)."""
    while True:  # looked at after each orchestrator episode only: no polling load on the loop
        log.episode.clear()
        if waiting_at_gate(engine, rid):
            return
        await asyncio.wait_for(log.episode.wait(), TIMEOUT_S)


async def approve_by_link(session: aiohttp.ClientSession, engine: Any, rid: str) -> None:
    """Ann approves as a script would: a JSON POST to her link (the gate's custom status)."""
    link = engine.status(rid)["customStatus"]["waitingFor"]["approvalLinks"][0]["url"]
    async with session.post(link, json={"decision": "approve"}) as answer:
        if answer.status not in (200, 202):
            raise RuntimeError(f"approval of {rid} answered {answer.status}:"
                               f" {(await answer.text())[:300]}")


async def webhook_pushes(engine: Any, log: InvocationLog, hooked: LocalRegistry,
                         kube: WatchedKube, layouts: list[OciLayout]) -> list[Push]:
    """Push each image into the registry that notifies the app; approve each release at its
    gate through the approval link; when each step reached the app and the cluster."""
    pushes = []
    async with aiohttp.ClientSession() as session:
        for layout in layouts:
            began = time.time()
            digest = await asyncio.to_thread(push, layout, hooked, WEBHOOK_SERVICE, layout.tag)
            pushed = time.time()
            rid = release_id(WEBHOOK_SERVICE, digest)
            await until_at_gate(engine, log, rid)
            received = datetime.fromisoformat(
                engine.status(rid)["input"]["trigger"]["receivedAt"]).timestamp()
            approved = time.time()
            await approve_by_link(session, engine, rid)
            answered = time.time()
            check_completed(rid, await engine.wait_for(rid, TIMEOUT_S))
            pushes.append(Push(pushed=pushed, received=received,
                               qa_write=kube.first_write("qa", began), approved=approved,
                               answered=answered,
                               prod_write=kube.first_write("prod", approved)))
    return pushes


async def one_release(engine: Any, log: InvocationLog, policy: Any, registry: LocalRegistry,
                      tag: str, digest: str) -> Release:
    log.take()
    started = time.time()
    rid = start_release(engine, policy, registry, SERVICE, tag, digest)
    await until_at_gate(engine, log, rid)
    wait_began = max(e.ended for e in log.entries if e.name == "release")
    raised = time.time()
    approve(engine, rid)
    status = await engine.wait_for(rid, TIMEOUT_S)
    ended = time.time()
    check_completed(rid, status)
    entries = log.take()
    return Release(total_ms=(ended - started) * 1000, wait_ms=(raised - wait_began) * 1000,
                   activities=[e for e in entries if e.kind == ACTIVITY],
                   episodes=[e for e in entries if e.kind == ORCHESTRATOR],
                   history=history_of(engine, rid))


async def concurrent_releases(engine: Any, log: InvocationLog, policy: Any,
                              registry: LocalRegistry, digests: dict[str, str],
                              slots: int) -> Concurrent:
    figures = Concurrent(slots=slots)
    log.take()
    cpu_before = cpu_now()
    started = time.time()
    ids = [start_release(engine, policy, registry, service, "v1.0.0", digest)
           for service, digest in digests.items()]
    done: dict[str, float] = {}

    async def finish(rid: str) -> dict[str, Any]:
        status = await engine.wait_for(rid, TIMEOUT_S)
        done[rid] = time.time()
        return status

    waits = asyncio.gather(*(finish(rid) for rid in ids))
    gated: set[str] = set()
    while len(gated) < len(ids) and not waits.done():
        looking = time.perf_counter()
        for status in engine.query(prefix=CONCURRENT_PREFIX, statuses=["Running"]):
            rid = status["instanceId"]
            if (rid not in gated and ":" not in rid
                    and (status.get("customStatus") or {}).get("step") == "approval"
                    and waiting_at_gate(engine, rid)):
                approve(engine, rid)
                gated.add(rid)
                figures.gate_s.append(time.time() - started)
        figures.polling_s += time.perf_counter() - looking
        await asyncio.sleep(GATE_POLL_S)
    statuses = await waits
    figures.wall_s = max(done.values()) - started
    figures.cpu_s = cpu_since(cpu_before)
    figures.latencies_s = [done[rid] - started for rid in ids]
    for rid, status in zip(ids, statuses, strict=True):
        outcome = (status.get("output") or {}).get("outcome") or status["runtimeStatus"]
        figures.outcomes[outcome] += 1
        figures.history_events.append(sum(sum(c.values())
                                          for c in history_of(engine, rid).values()))
    figures.completed = figures.outcomes["Completed"]
    entries = log.take()
    figures.activities = [e for e in entries if e.kind == ACTIVITY]
    figures.episodes = [e for e in entries if e.kind == ORCHESTRATOR]
    return figures


@dataclass(frozen=True)
class Parts:
    """What the app runs against, started by `main`."""

    root: Path
    tls: TlsFiles
    azurite: Azurite
    kubes: dict[str, WatchedKube]
    registry: LocalRegistry  # no notifications: releases are started directly
    hooked: LocalRegistry  # notifies the app's webhook, as `make run` wires it
    app_port: int  # where `hooked` sends its notifications
    webhook_token: str


async def run(parts: Parts) -> tuple[list[Push], list[Release], Concurrent]:
    root, registry = parts.root, parts.registry
    policy_file = root / "policy.yaml"
    policy_file.write_text(policy_text(registry, parts.hooked, parts.tls))
    policy = parse_policy(policy_file.read_text(), str(policy_file))
    os.environ.update({"AzureWebJobsStorage": parts.azurite.connection_string,
                       "LEDGER_TABLE_PREFIX": "bench" + secrets.token_hex(4),
                       "RELEASE_POLICY_FILE": str(policy_file),
                       "REGISTRY_WEBHOOK_TOKEN": parts.webhook_token,
                       "APPROVAL_SIGNING_KEY": secrets.token_urlsafe(48),
                       "APPROVAL_BASE_URL": f"http://127.0.0.1:{parts.app_port}",
                       "APPROVAL_IDENTITY": "token"})
    for name, kube in parts.kubes.items():
        for env in ("qa", "prod"):
            os.environ[f"SECRETS__{env.upper()}__KUBECONFIG_{name.upper()}"] = \
                kube.kubeconfig(TOKEN)
            kube.create_deployment(env, name, OLD_IMAGE)
    tags = [f"v1.{i}.0" for i in range(WARMUPS + RUNS)]
    wanted = [(SERVICE, t) for t in tags] + [(s, "v1.0.0") for s in service_names()]
    digests = push_images(root, registry, wanted)
    layouts = build_layouts(root, WEBHOOK_SERVICE, [f"v2.{i}.0" for i in range(PUSHES)])

    log = InvocationLog()
    with collecting(log):
        try:
            async with app_host(root / "devhost", parts.app_port) as host:
                pushes = await webhook_pushes(host.engine, log, parts.hooked,
                                              parts.kubes[WEBHOOK_SERVICE], layouts)
                releases = [await one_release(host.engine, log, policy, registry, tag,
                                              digests[SERVICE, tag]) for tag in tags]
                concurrent = await concurrent_releases(
                    host.engine, log, policy, registry,
                    {s: digests[s, "v1.0.0"] for s in service_names()},
                    host.settings.max_activities)
        finally:
            for name in parts.kubes:  # close the app's cached clients before their clusters stop
                forget(name)
    return pushes, releases[WARMUPS:], concurrent


# --- report ---------------------------------------------------------------------------------------

def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(row)).rstrip())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summed(entries: list[Invocation]) -> dict[str, tuple[int, float]]:
    """(calls, ms) per function name, largest first."""
    grouped: dict[str, list[float]] = {}
    for e in entries:
        grouped.setdefault(e.name, []).append(e.ms)
    return {name: (len(ms), sum(ms))
            for name, ms in sorted(grouped.items(), key=lambda kv: -sum(kv[1]))}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (`share` 0.95 for p95): a value that was measured."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def report_pushes(pushes: list[Push]) -> tuple[float, float]:
    """The webhook pass; returns the p95 of push -> QA and approval -> prod, in ms."""
    print(f"{len(pushes)} images pushed through the webhook (a registry notifying the app, as"
          " `make run`), each approved by its link; ms; the first is the host's first release:")
    figures = [
        ("skopeo exit -> ingestion began (< 0: notified first)", lambda p: p.notified_ms),
        ("ingestion began -> first QA write", lambda p: p.received_to_qa_ms),
        ("push -> first QA write", lambda p: p.push_to_qa_ms),
        ("approval POST -> its answer", lambda p: p.answer_ms),
        ("approval POST -> first prod write (promotion included)",
         lambda p: p.approval_to_prod_ms),
    ]
    rows = [("", "first", "p50", "p95", "max")]
    for label, value in figures:
        values = [value(p) for p in pushes]
        rows.append((label, f"{values[0]:.1f}", f"{percentile(values, 0.5):.1f}",
                     f"{percentile(values, 0.95):.1f}", f"{max(values):.1f}"))
    table(rows)
    print()
    return (percentile([p.push_to_qa_ms for p in pushes], 0.95),
            percentile([p.approval_to_prod_ms for p in pushes], 0.95))


def median_run(releases: list[Release]) -> Release:
    """The run whose total - wait is the median (a run, so its parts add up)."""
    ordered = sorted(releases, key=lambda r: r.busy_ms)
    return ordered[(len(ordered) - 1) // 2]


def report_alone(releases: list[Release]) -> Release:
    mid = median_run(releases)
    print(f"one release at a time, ms ({len(releases)} runs after {WARMUPS} warm-ups; 'median"
          " run' = the run with the median total - wait, whose parts add up):")
    rows = [("", *(f"run {i + 1}" for i in range(len(releases))), "median run")]
    figures = [
        ("total, start -> Completed", lambda r: r.total_ms, "{:.0f}"),
        ("approval wait (gate reached -> approved)", lambda r: r.wait_ms, "{:.1f}"),
        ("total - wait", lambda r: r.busy_ms, "{:.0f}"),
        (f"activities, sum of {len(mid.activities)} (baseline)", lambda r: r.activities_ms,
         "{:.0f}"),
        ("orchestration overhead = total - wait - activities", lambda r: r.overhead_ms,
         "{:.0f}"),
        (f"  orchestrator episodes ({len(mid.episodes)}), replay + commit",
         lambda r: r.episodes_ms, "{:.0f}"),
        ("  between steps: dispatch, queues, wake-ups", lambda r: r.between_ms, "{:.0f}"),
        ("(total - wait) / activities", lambda r: r.busy_ms / r.activities_ms, "{:.2f}"),
        ("history events, release + sub-orchestrations", lambda r: r.history_events,
         "{:.0f}"),
        ("failed invocations (retried)", lambda r: r.failed, "{:.0f}"),
    ]
    for label, value, fmt in figures:
        rows.append((label, *(fmt.format(value(r)) for r in releases), fmt.format(value(mid))))
    table(rows)
    print()
    print("history of the median run: " + ", ".join(
        f"{iid.rsplit(':', 1)[-1] if ':' in iid else 'release'} {sum(c.values())}"
        for iid, c in mid.history.items()) + "; by type: " + ", ".join(
        f"{name} {n}" for name, n in sum(mid.history.values(), Counter()).most_common()))
    print()
    rows = [("where the median run's time goes", "calls", "ms", "ms/call", "share")]
    parts = ([(f"activity {name}", calls, ms)
              for name, (calls, ms) in summed(mid.activities).items()]
             + [(f"episodes of {name}", calls, ms)
                for name, (calls, ms) in summed(mid.episodes).items()]
             + [("between steps", 0, mid.between_ms), ("approval wait", 0, mid.wait_ms)])
    for label, calls, ms in parts:
        rows.append((label, str(calls) if calls else "", f"{ms:.1f}",
                     f"{ms / calls:.1f}" if calls else "", f"{ms / mid.total_ms:.0%}"))
    slowest = max(mid.episodes, key=lambda e: e.ms)
    rows.append((f"slowest episode ({slowest.name})", "", f"{slowest.ms:.1f}", "", ""))
    table(rows)
    print()
    return mid


def report_concurrent(c: Concurrent, mid: Release) -> float:
    activity_s = sum(e.ms for e in c.activities) / 1000
    floor_s = activity_s / c.slots
    print(f"{CONCURRENT} releases of {CONCURRENT} services at once (each service its own"
          " cluster), approved as they reach the gate:")
    table([
        ("", "value"),
        ("wall s, first start -> last Completed", f"{c.wall_s:.2f}"),
        ("releases/s", f"{c.per_s:.2f}"),
        ("completed", f"{c.completed} of {CONCURRENT}"
         + ("" if c.completed == CONCURRENT else f" ({dict(c.outcomes)})")),
        ("per release s, start -> Completed: median / max",
         f"{median(c.latencies_s):.2f} / {max(c.latencies_s):.2f}"),
        ("at the gate and approved, s after start: median / max",
         f"{median(c.gate_s):.2f} / {max(c.gate_s):.2f}" if c.gate_s else "-"),
        (f"activities: {len(c.activities)}, sum s", f"{activity_s:.2f}"),
        (f"activity sum / {c.slots} activity slots (host.json) s", f"{floor_s:.2f}"),
        ("wall / (activity sum / slots)", f"{c.wall_s / floor_s:.2f}"),
        (f"orchestrator episodes: {len(c.episodes)}, sum s",
         f"{sum(e.ms for e in c.episodes) / 1000:.2f}"),
        ("history events per release: median", f"{median(c.history_events):.0f}"),
        (f"the bench's gate look-ups every {GATE_POLL_S * 1000:.0f} ms, on the app's loop s",
         f"{c.polling_s:.2f}"),
    ])
    print()
    alone = {name: ms / calls for name, (calls, ms) in summed(mid.activities).items()}
    rows = [("activity at 100 in flight", "calls", "sum s", "ms/call", "alone ms/call")]
    for name, (calls, ms) in summed(c.activities).items():
        rows.append((name, str(calls), f"{ms / 1000:.2f}", f"{ms / calls:.1f}",
                     f"{alone.get(name, float('nan')):.1f}"))
    table(rows)
    print()
    print(f"CPU s during the {c.wall_s:.1f} s ({os.cpu_count()} CPUs, shared by the app,"
          f" {len(service_names()) + 1} simulator threads, Azurite and the registry): "
          + ", ".join(f"{name} {s:.1f}" for name, s in
                      sorted(c.cpu_s.items(), key=lambda kv: -kv[1]) if s >= 0.05))
    print()
    return floor_s


def report(pushes: list[Push], releases: list[Release], c: Concurrent) -> str:
    qa_p95, prod_p95 = report_pushes(pushes)
    qa_first = pushes[0].push_to_qa_ms
    mid = report_alone(releases)
    floor_s = report_concurrent(c, mid)
    aims = [
        (f"push -> first QA write < {AIM_PUSH_TO_QA_MS:.0f} ms, the host's first release"
         f" included: first {qa_first:.0f} ms, p95 {qa_p95:.0f} ms",
         max(qa_first, qa_p95) < AIM_PUSH_TO_QA_MS),
        (f"approval -> first prod write < {AIM_APPROVAL_TO_PROD_MS:.0f} ms: p95"
         f" {prod_p95:.0f} ms", prod_p95 < AIM_APPROVAL_TO_PROD_MS),
        (f"orchestration overhead < {AIM_OVERHEAD_MS:.0f} ms per release:"
         f" {mid.overhead_ms:.0f} ms (median run)", mid.overhead_ms < AIM_OVERHEAD_MS),
        (f"< {AIM_HISTORY} history events per release: {mid.history_events}",
         mid.history_events < AIM_HISTORY),
        (f"all {CONCURRENT} concurrent releases completed: {c.completed}",
         c.completed == CONCURRENT),
    ]
    print_aims(aims)
    print()
    to_qa = [p.push_to_qa_ms for p in pushes]
    to_prod = [p.approval_to_prod_ms for p in pushes]
    return ("release: "
            f"push_to_qa_first_ms={qa_first:.0f} push_to_qa_p50_ms={percentile(to_qa, 0.5):.0f}"
            f" push_to_qa_p95_ms={qa_p95:.0f}"
            f" approval_to_prod_p50_ms={percentile(to_prod, 0.5):.0f}"
            f" approval_to_prod_p95_ms={prod_p95:.0f}"
            f" total_ms={mid.busy_ms:.0f} activities_ms={mid.activities_ms:.0f}"
            f" overhead_ms={mid.overhead_ms:.0f} episodes_ms={mid.episodes_ms:.0f}"
            f" wait_ms={mid.wait_ms:.1f} history_events={mid.history_events}"
            f" concurrent_{CONCURRENT}_s={c.wall_s:.2f} releases_per_s={c.per_s:.2f}"
            f" concurrent_completed={c.completed} concurrent_floor_s={floor_s:.2f}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="release-bench-") as temp:
        root = Path(temp)
        tls = make_throwaway_cert(root / "tls")
        app_port, token = free_port(), secrets.token_urlsafe(24)
        hook = {"notify_url": f"http://127.0.0.1:{app_port}/api/registry/events",
                "notify_headers": {"Authorization": f"Bearer {token}"}}
        with Azurite(root / "azurite") as azurite, clusters(tls) as kubes, \
                LocalRegistry(root / "registry", tls) as registry, \
                LocalRegistry(root / "hooked", tls, **hook) as hooked:
            pushes, releases, concurrent = asyncio.run(run(Parts(
                root, tls, azurite, kubes, registry, hooked, app_port, token)))
    print(report(pushes, releases, concurrent))


if __name__ == "__main__":
    main()
