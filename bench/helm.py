"""Benchmark of the `helm` target's deploy and rollback against the bare helm-python-sdk calls.

Against `sandbox.kube.server.KubeSimulator` (zero-time rollouts, TLS with a throwaway CA, a
bearer token limited to the bench namespace, as the product connects) run in a child
process, so the bench process's resident memory is the worker's alone. The sample chart
`charts/delivery` is pushed to a local docker-registry with `sandbox/chart_push.py`.

- ours: the activities as the orchestrator calls them, through devhost's invoker (the JSON
  decode/encode, the activity thread and `marks_failures` are part of what a worker does).
  Deploy = `deploy_image` (fetch of the chart by digest, cached per process; render check;
  Helm's upgrade started on a thread) then `await_rollout` until complete. Rollback =
  `rollback_deployment` to the revision `snapshot_deployment` saw before the deploy (it
  watches briefly itself), then `await_rollout` until complete. The snapshot, which the
  orchestrator takes before each deploy, is timed on its own and not counted.
- bare: what `helm upgrade --wait=watcher` and `helm rollback --wait=watcher` do, made with
  the SDK: a fresh `Config` (as each CLI run builds one) and `upgrade(..., wait="watcher")`
  with the same chart archive and values, `rollback(version=..., wait="watcher")`, on a
  worker thread as our activities run (devhost's event loop keeps running for both sides).

Each side has its own Helm release in the namespace; the sides take turns, order swapped
each iteration. Deploys alternate between two digests and every rollback returns to the
revision before, so each release keeps three ReplicaSets; both sides keep `maxHistory`
revisions. Timing wrappers on our target's parts (history reads, chart, render check,
Helm's own action) show where ours spends its time in the same runs. Then RSS of this
process (devhost, our activities, Helm's Go runtime) before and after 100 more upgrades
through our path. Baseline and aims: /work/shared/notes/benchmarks.md. Prints figures and
aims, asserts nothing; ends with one `helm: key=value ...` line.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import helm_python
from benchkit import REPO, Timings, print_aims, quiet  # before the project: sets the import path

from devhost.host import Host
from devhost.invoker import Invoker
from sandbox.chart_push import push_chart
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles, make_throwaway_cert
from shared.helm import runs
from shared.helm.access import BURST, QPS
from shared.helm.charts import fetch_oci
from shared.helm.target import HelmChart
from shared.policy.helm import DEFAULT_MAX_HISTORY, HelmTarget
from shared.registry.client import RegistryEndpoint
from shared.registry.registries import for_endpoint

NAMESPACE = "bench"
TOKEN = "bench-deployer-token"
CHART = REPO / "charts" / "delivery"
CHART_VERSION = "1.0.0"
REPOSITORY = "acr.io/delivery"
SECRET_ENV = "SECRETS__QA__BENCH_KUBECONFIG"  # how the worker reads the kubeconfig secret
CONNECTION = {"name": "bench-cluster", "kubeconfigSecret": "bench-kubeconfig", "aks": None}
SECRETS = {"local": {"environment": "qa"}}
HELM_TIMEOUT_S = 120
ROLLOUT_CHECK_SECONDS = 20  # what orchestrations/deploying.py asks each await for
WARMUPS = 3
ITERATIONS = 60
MIN_ITERATIONS = 20
TIME_BUDGET_S = 50.0  # for the timed iterations: fewer than ITERATIONS on a busy host
HISTORY_READS = 20
HELM_ACTION = "Helm's own action"
CALLS = " calls"
MEMORY_UPGRADES = 100
MEMORY_SAMPLES = 5
AIM_RATIO = 1.3
AIM_RSS_MB = 20.0
SIMULATOR_FLAG = "--simulator"
OPERATIONS = ("deploy", "rollback")
SIDES = ("ours", "bare")


def digest(seed: str) -> str:
    return f"sha256:{hashlib.sha256(seed.encode()).hexdigest()}"


FIRST = digest("bench-helm-first")
DEPLOYED = (digest("bench-helm-a"), digest("bench-helm-b"))


@dataclass
class Measured(Timings):
    """One side of one operation: wall times and requests the simulator saw per run."""

    kinds: Counter[str] = field(default_factory=Counter)
    parts: list[Counter[str]] = field(default_factory=list)  # ours: ms and calls per part


# --- the simulator in a child process ----------------------------------------------------------

def serve_simulator(tls: TlsFiles) -> None:
    """Run a simulator until stdin closes; one JSON line in, one out (the request log)."""
    with KubeSimulator(tls=tls, tokens={TOKEN: {NAMESPACE}}, rollout_seconds=0.0) as sim:
        print(json.dumps(sim.kubeconfig(TOKEN, NAMESPACE)), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            answer: Any = None
            if command == "requests":
                answer = sim.requests()
            elif command == "reset":
                sim.reset_requests()
            elif command == "history":
                answer = {side: [(r.revision, r.status) for r in
                                 sim.helm_releases(NAMESPACE, side)] for side in SIDES}
            print(json.dumps(answer), flush=True)


class Simulator:
    """The parent's handle on the child process's simulator."""

    def __init__(self, tls: TlsFiles) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, SIMULATOR_FLAG, str(tls.cert), str(tls.key),
             str(tls.ca)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.kubeconfig: str = self._answer()

    def ask(self, command: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def _answer(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator process ended ({self.process.wait()})")
        return json.loads(line)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


# --- the two sides ------------------------------------------------------------------------------

def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@dataclass
class Steps:
    """Our activities' own times per operation, to show where an operation's time goes."""

    ms: dict[str, list[float]] = field(default_factory=dict)
    awaits: list[int] = field(default_factory=list)

    def add(self, name: str, ms: float) -> None:
        self.ms.setdefault(name, []).append(ms)


class Ours:
    """The product's activities on release `ours`, through devhost's invoker."""

    def __init__(self, invoker: Invoker, registry: dict[str, Any], chart: dict[str, Any]) -> None:
        self.invoker = invoker
        self.chart = chart
        self.target = HelmTarget(cluster=CONNECTION["name"], namespace=NAMESPACE,
                                 release="ours", chart=chart["source"],
                                 chart_registry=registry).to_dict()
        self.steps = Steps()
        self.snapshot: dict[str, Any] | None = None
        self.count = 0

    def request(self, **fields: Any) -> dict[str, Any]:
        return {"target": self.target, "connection": CONNECTION, "secrets": SECRETS, **fields}

    async def call(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        answer: dict[str, Any] = json.loads(await self.invoker.run_activity(
            name, json.dumps(body)))
        self.steps.add(name, (time.perf_counter() - started) * 1000)
        return answer

    async def take_snapshot(self) -> None:
        self.snapshot = await self.call("snapshot_deployment", self.request())

    async def deploy(self, image_digest: str) -> None:
        self.count += 1
        release_id = f"bench-{self.count}"
        await self.call("deploy_image", self.request(
            image=f"{REPOSITORY}@{image_digest}", releaseId=release_id, chart=self.chart,
            changeCause=f"release {release_id}", timeoutSeconds=HELM_TIMEOUT_S))
        await self.until_complete(None)

    async def rollback(self) -> None:
        if self.snapshot is None:
            raise RuntimeError("rollback before any snapshot")
        answer = await self.call("rollback_deployment", self.request(
            snapshot=self.snapshot, deadline=later(HELM_TIMEOUT_S),
            maxWaitSeconds=ROLLOUT_CHECK_SECONDS, changeCause="bench rollback"))
        await self.until_complete(answer["rollout"])

    async def until_complete(self, status: dict[str, Any] | None) -> None:
        looks = 0
        while status is None or status["state"] == "progressing":
            status = await self.call("await_rollout", self.request(
                deadline=later(HELM_TIMEOUT_S), maxWaitSeconds=ROLLOUT_CHECK_SECONDS))
            looks += 1
        self.steps.awaits.append(looks)
        if status["state"] != "complete":
            raise RuntimeError(f"our rollout {status['state']}: {status.get('message')}")


class Bare:
    """The SDK's upgrade and rollback with Helm's watcher on release `bare`."""

    def __init__(self, kubeconfig: str, chart: helm_python.Chart) -> None:
        self.kubeconfig = kubeconfig
        self.chart = chart
        self.revision = 0
        self.previous = 0

    def config(self) -> helm_python.Config:
        return helm_python.Config(kubeconfig_content=self.kubeconfig, namespace=NAMESPACE,
                                  qps=QPS, burst_limit=BURST)

    def values(self, image_digest: str) -> dict[str, Any]:
        return {"image": {"repository": REPOSITORY, "digest": image_digest}}

    def install(self, image_digest: str) -> None:
        with self.config() as config:
            config.install(self.chart, "bare", self.values(image_digest), wait="watcher",
                           timeout=HELM_TIMEOUT_S)
        self.revision = 1

    async def deploy(self, image_digest: str) -> None:
        await asyncio.to_thread(self._upgrade, image_digest)
        self.previous, self.revision = self.revision, self.revision + 1

    async def rollback(self) -> None:
        await asyncio.to_thread(self._rollback, self.previous)
        self.revision += 1

    def _upgrade(self, image_digest: str) -> None:
        with self.config() as config:
            config.upgrade(self.chart, "bare", self.values(image_digest), wait="watcher",
                           timeout=HELM_TIMEOUT_S, max_history=DEFAULT_MAX_HISTORY)

    def _rollback(self, revision: int) -> None:
        with self.config() as config:
            config.rollback("bare", version=revision, wait="watcher", timeout=HELM_TIMEOUT_S)


# --- measuring ----------------------------------------------------------------------------------

def kind_of(path: str) -> str:
    """`secrets`, `deployments`, … from a request path (watches marked)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    word = next((p for p in reversed(parts) if p in {
        "secrets", "deployments", "replicasets", "pods", "services", "configmaps"}),
        parts[-1] if parts else path)
    return word + (" watch" if "watch=true" in path else "")


async def run(sim: Simulator, action: Callable[[], Awaitable[None]], into: Measured,
              breakdown: Breakdown | None = None) -> None:
    sim.ask("reset")
    if breakdown is not None:
        breakdown.counting = Counter()
    started = time.perf_counter()
    await action()
    into.ms.append((time.perf_counter() - started) * 1000)
    if breakdown is not None:
        into.parts.append(breakdown.counting or Counter())
        breakdown.counting = None
    requests = sim.ask("requests")
    into.requests.append(len(requests))
    into.kinds.update(f"{method} {kind_of(path)}" for method, path in requests)


async def measure(sim: Simulator, ours: Ours, bare: Bare) -> dict[tuple[str, str], Measured]:
    """Interleaved iterations (order swapped each time); ours' parts timed as they run."""
    figures = {(side, op): Measured() for side in SIDES for op in OPERATIONS}
    scratch = {(side, op): Measured() for side in SIDES for op in OPERATIONS}
    snapshots = Measured()
    sides: dict[str, Ours | Bare] = {"ours": ours, "bare": bare}
    n = 0
    budget_end = float("inf")
    with Breakdown() as breakdown:
        while n < WARMUPS + ITERATIONS:
            n += 1
            if n == WARMUPS + 1:
                budget_end = time.perf_counter() + TIME_BUDGET_S
                ours.steps = Steps()
            elif n > WARMUPS + MIN_ITERATIONS and time.perf_counter() > budget_end:
                break
            into = figures if n > WARMUPS else scratch
            for name in SIDES if n % 2 else SIDES[::-1]:
                side = sides[name]
                timed = breakdown if name == "ours" else None
                if isinstance(side, Ours):
                    await run(sim, side.take_snapshot, snapshots)
                await run(sim, lambda side=side, n=n: side.deploy(DEPLOYED[n % 2]),
                          into[name, "deploy"], timed)
                await run(sim, side.rollback, into[name, "rollback"], timed)
    figures["ours", "snapshot"] = snapshots
    return figures


class Breakdown:
    """Wall time inside our Helm target's parts while `counting` is set: timing wrappers on
    the class for the timed runs only (a few microseconds; they change nothing they wrap)."""

    PARTS = ("_history", "_chart", "_check_renders", "_pod_failure", "_description")

    def __init__(self) -> None:
        self.counting: Counter[str] | None = None
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> Breakdown:
        for name in self.PARTS:
            original = getattr(HelmChart, name)
            setattr(HelmChart, name, self._timed(original, name.strip("_")))
            self._undo.append(lambda name=name, original=original: setattr(
                HelmChart, name, original))
        start = runs.start

        def timed_start(key: Any, action: str, release_id: Any, work: Callable[[], Any]) -> Any:
            return start(key, action, release_id, self._timed(work, HELM_ACTION))

        runs.start = timed_start  # the target looks up runs.start at each call
        self._undo.append(lambda: setattr(runs, "start", start))
        return self

    def __exit__(self, *_: object) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _timed(self, function: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counting = self.counting
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if counting is not None:
                    counting[label] += (time.perf_counter() - started) * 1000
                    counting[label + CALLS] += 1
        return wrapper


def history_reads(bare: Bare) -> tuple[float, float]:
    """Medians (ms) of a history read with a fresh Config (as `_history` makes it), and of a
    second read on the same Config (the difference: the Config's client and TLS set-up)."""
    fresh, again = [], []
    for _ in range(HISTORY_READS):
        started = time.perf_counter()
        with bare.config() as config:
            config.history("bare")
            read = time.perf_counter()
            config.history("bare")
            again.append((time.perf_counter() - read) * 1000)
        fresh.append((read - started) * 1000)
    return statistics.median(fresh), statistics.median(again)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def memory(ours: Ours) -> list[tuple[int, float]]:
    """RSS (MB) after 0, 20, … MEMORY_UPGRADES upgrades (deploy + await) through our path."""
    gc.collect()
    samples = [(0, rss_mb())]
    every = MEMORY_UPGRADES // MEMORY_SAMPLES
    for n in range(1, MEMORY_UPGRADES + 1):
        await ours.deploy(DEPLOYED[n % 2])
        if n % every == 0:
            gc.collect()
            samples.append((n, rss_mb()))
    return samples


# --- report -------------------------------------------------------------------------------------

def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(row)).rstrip())


def report(figures: dict[tuple[str, str], Measured], steps: Steps, reads: tuple[float, float],
           samples: list[tuple[int, float]], threads: tuple[int, int]) -> str:
    runs = len(figures["ours", "deploy"].ms)
    ratio = {op: figures["ours", op].median / figures["bare", op].median for op in OPERATIONS}
    p90_ratio = {op: figures["ours", op].p90 / figures["bare", op].p90 for op in OPERATIONS}
    rows = [("", "ours", "bare", "ratio")]
    for op in OPERATIONS:
        ours, bare = figures["ours", op], figures["bare", op]
        rows += [
            (f"{op} median ms ({runs} runs)", f"{ours.median:.1f}", f"{bare.median:.1f}",
             f"{ratio[op]:.2f}"),
            (f"{op} p90 ms", f"{ours.p90:.1f}", f"{bare.p90:.1f}", f"{p90_ratio[op]:.2f}"),
            (f"{op} API requests", f"{ours.median_requests:g}", f"{bare.median_requests:g}",
             f"{ours.median_requests / bare.median_requests:.2f}"),
        ]
    snapshot = figures["ours", "snapshot"]
    rows.append(("snapshot before a deploy (ours only) median ms", f"{snapshot.median:.1f}",
                 "", ""))
    table(rows)
    print()
    print("our activities, median ms per call (calls per operation):")
    for name, ms in sorted(steps.ms.items()):
        print(f"  {name}: {statistics.median(ms):.1f} ms ({len(ms) / runs:.1f} per iteration)")
    print(f"  await_rollout calls per operation: max {max(steps.awaits)}")
    print()
    print("where our time goes, median ms per operation (timed parts of the target in the"
          " same runs; rest = devhost invoker, JSON, request parsing, thread hand-offs):")
    labels = sorted({label for op in OPERATIONS for part in figures["ours", op].parts
                     for label in part if not label.endswith(CALLS)})
    rows = [("", "total", *labels, "rest", "bare total")]
    for op in OPERATIONS:
        ours = figures["ours", op]
        median = {label: statistics.median(p[label] for p in ours.parts) for label in labels}
        calls = {label: statistics.median(p[label + CALLS] for p in ours.parts)
                 for label in labels}
        rest = statistics.median(total - sum(p[label] for label in labels)
                                 for total, p in zip(ours.ms, ours.parts, strict=True))
        rows.append((op, f"{ours.median:.1f}", *(f"{median[label]:.1f} ({calls[label]:g}x)"
                                                 for label in labels),
                     f"{rest:.1f}", f"{figures['bare', op].median:.1f}"))
    table(rows)
    print(f"one history read with a fresh Config (as _history makes it): {reads[0]:.1f} ms; a"
          f" second read on the same Config: {reads[1]:.1f} ms (bare, same run,"
          f" {HISTORY_READS} each)")
    print()
    for op in OPERATIONS:
        for side in SIDES:
            counts = figures[side, op].kinds
            total = len(figures[side, op].ms)
            print(f"{op} {side} requests per run: " + ", ".join(
                f"{count / total:g} {kind}" for kind, count in counts.most_common()))
    print()
    growth = samples[-1][1] - samples[0][1]
    print(f"worker RSS over {MEMORY_UPGRADES} upgrades through our path (MB): " + ", ".join(
        f"{n}: {mb:.1f}" for n, mb in samples) + f"; growth {growth:+.1f} MB;"
        f" threads {threads[0]} -> {threads[1]}")
    print()
    print("TLS (throwaway CA) + bearer token; zero-time rollouts; simulator in a child process;"
          " bare = fresh Config + upgrade/rollback with wait=watcher")
    print()
    aims = [(f"{op}: ours <= {AIM_RATIO}x the bare SDK call: {figures['ours', op].median:.1f}"
             f" ms vs {figures['bare', op].median:.1f} ms = {ratio[op]:.2f}x",
             ratio[op] <= AIM_RATIO) for op in OPERATIONS]
    aims.append((f"worker RSS grows < {AIM_RSS_MB:g} MB over {MEMORY_UPGRADES} upgrades:"
                 f" {growth:+.1f} MB", growth < AIM_RSS_MB))
    print_aims(aims)
    print()
    return ("helm: "
            f"ours_deploy_ms={figures['ours', 'deploy'].median:.1f}"
            f" ours_deploy_p90_ms={figures['ours', 'deploy'].p90:.1f}"
            f" bare_deploy_ms={figures['bare', 'deploy'].median:.1f}"
            f" bare_deploy_p90_ms={figures['bare', 'deploy'].p90:.1f}"
            f" ratio_deploy={ratio['deploy']:.2f}"
            f" ours_rollback_ms={figures['ours', 'rollback'].median:.1f}"
            f" ours_rollback_p90_ms={figures['ours', 'rollback'].p90:.1f}"
            f" bare_rollback_ms={figures['bare', 'rollback'].median:.1f}"
            f" bare_rollback_p90_ms={figures['bare', 'rollback'].p90:.1f}"
            f" ratio_rollback={ratio['rollback']:.2f}"
            f" snapshot_ms={snapshot.median:.1f}"
            f" history_read_ms={reads[0]:.1f}"
            f" rss_start_mb={samples[0][1]:.1f} rss_growth_mb={growth:.1f}"
            f" upgrades={MEMORY_UPGRADES} runs={runs}")


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def bench(root: Path, tls: TlsFiles, sim: Simulator,
                registry: LocalRegistry) -> str:
    pushed = push_chart(CHART, f"oci://{registry.host}/helm", tls.ca, version=CHART_VERSION)
    endpoint = {"url": registry.endpoint, "auth": "anonymous", "caBundle": str(tls.ca)}
    source = pushed.reference.rsplit(":", 1)[0]
    chart = {"source": source, "name": "delivery", "version": CHART_VERSION,
             "digest": pushed.digest}
    archive = fetch_oci(for_endpoint(RegistryEndpoint.from_dict(endpoint)),
                        source.split("/", 3)[3], pushed.digest)[1]
    os.environ[SECRET_ENV] = sim.kubeconfig
    os.environ.setdefault("APPROVAL_SIGNING_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("APPROVAL_BASE_URL", "http://approvals.bench")
    host = Host(REPO, port=0, data_dir=root / "devhost")
    await host.start()
    try:
        assert host.invoker is not None
        ours = Ours(host.invoker, endpoint, chart)
        bare = Bare(sim.kubeconfig, helm_python.Chart.load_archive(archive))
        await ours.deploy(FIRST)
        bare.install(FIRST)
        figures = await measure(sim, ours, bare)
        steps, ours.steps = ours.steps, Steps()
        reads = history_reads(bare)
        before = threads()
        samples = await memory(ours)
        history = sim.ask("history")
        for side in SIDES:
            statuses = Counter(status for _, status in history[side])
            if statuses["deployed"] != 1 or set(statuses) - {"deployed", "superseded"}:
                raise RuntimeError(f"helm history of {side} after the bench: {history[side]}")
        return report(figures, steps, reads, samples, (before, threads()))
    finally:
        await host.stop()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="helm-bench-") as temp:
        root = Path(temp)
        tls = make_throwaway_cert(root / "tls")
        sim = Simulator(tls)
        try:
            with LocalRegistry(root / "registry", tls) as registry, \
                    quiet("devhost", "devhost.invocations"):
                summary = asyncio.run(bench(root, tls, sim, registry))
        finally:
            sim.stop()
    print(summary)


if __name__ == "__main__":
    if sys.argv[1:2] == [SIMULATOR_FLAG]:
        serve_simulator(TlsFiles(*(Path(p) for p in sys.argv[2:5])))
    else:
        main()
