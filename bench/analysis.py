"""Benchmark of a release's analysis on devhost (system clock): how fast a failing error rate
rolls back a rolling deploy, aborts a canary and switches a blue-green Service back, and what
each measurement costs in history.

Real parts: Azurite (ledger), the local OCI registry (TLS), the Kubernetes simulator with
stand-ins (`standins=True`, wall-clock rollouts in 0 s), one namespace per service, each with
a Service named like it that gets TRAFFIC_RPS requests/s while its part runs, and Debian's
Prometheus (1 s scrape) whose file_sd file this bench keeps in step with `sim.standins()`
every SYNC_S. One environment, no gate; its analysis is one Prometheus error-rate metric
(interval 5 s, max 0.1), `... or vector(0)`: right after a rollout the old pods' series end and
the new pods are not scraped yet (~5 s), and that gap is not an error rate (without it
`onNoData` would decide). The bad images' stand-ins answer 50 % errors. Measured, REPS runs
each, medians:

1. rolling: a healthy version runs (created directly); from the moment the namespace's error
   rate (the same query, polled by the bench every POLL_S) crosses the threshold to the
   restore PATCH reaching the simulator. Also the parts before it: deploy PATCH -> crossing
   (Prometheus discovering the new pods + the rate window), the wait for the next
   measurement, the failing measurement, and its verdict -> the restore PATCH (our own time).
2. canary (replicas 4, weights [25, 50]; the analysis over the canary's pods,
   `pod=~"${canary}-…"`): crossing -> the abort's first write, the canary Deployment's
   PATCH to 0 replicas; from the first step's write (the canary's pods).
3. blue-green (postPromotionAnalysis over the new slot's pods; a good first release, then
   the bad ones): crossing -> the active Service's PATCH back to the old slot, and the failed
   verdict (the failing `measure_analysis` activity completed, devhost's invocation log) ->
   that PATCH; from the switch PATCH.
   For each kind, the verdict -> PATCH is split at the restore activity's start; its GETs
   before the PATCH are counted, with the simulator's time answering them (`TimedKube`).
4. history events of the environment's sub-orchestration with MEASUREMENTS measurements
   against the same release of a service without analysis, per measurement; the whole
   release's history without analysis (aim < 100), and each abort's.

About 2 min 45 s; parts 2 and 3 add about 1 min 45 s of it. Baseline and aims:
/work/shared/notes/benchmarks.md. Prints figures and aims, asserts nothing, ends with one
`analysis: key=value ...` summary line.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from benchkit import app_host, print_aims  # before the project: sets the import path

from bench.release import (
    ACTIVITY,
    InvocationLog,
    WatchedKube,
    collecting,
    history_of,
    start_release,
    table,
)
from sandbox.azurite import Azurite
from sandbox.images import build_image, push
from sandbox.kube.objects import ApiError
from sandbox.kube.standins import file_sd_targets
from sandbox.prometheus import LocalPrometheus
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles, make_throwaway_cert
from shared.cluster.clusters import forget
from shared.policy.loader import parse_policy

# Services (namespace and Deployment named like the service): rolling with and without
# analysis, canary, blue-green.
ROLLING, PLAIN, CANARY, BLUE_GREEN = "delivery", "plain", "web", "shop"
CANARY_DEPLOYMENT = f"{CANARY}-canary"
SLOTS = (BLUE_GREEN, f"{BLUE_GREEN}-green")
PREVIEW = f"{BLUE_GREEN}-preview"
ENV = "prod"
TOKEN = "bench-analysis-admin"
INTERVAL_S = 5.0
MEASUREMENTS = 3
THRESHOLD = 0.1
ERRORS = 0.5
CANARY_REPLICAS, CANARY_WEIGHTS = 4, "[25, 50]"
SCALE_DOWN_DELAY = f"{INTERVAL_S * MEASUREMENTS:g}s"  # the checker's minimum
RATE_WINDOW = "3s"  # three 1 s scrapes: the shortest window rate() reads reliably
REPS = 5
TRAFFIC_RPS = 40.0
POLL_S = 0.05
SYNC_S = 0.2
TIMEOUT_S = 60.0
MEASURE, RESTORE = "measure_analysis", "rollback_deployment"
AIM_REACTION_S = INTERVAL_S + 1.0
AIM_SWITCH_BACK_MS = 1000.0
AIM_HISTORY = 100
ERROR_RATE = ('(sum(rate(http_requests_total{{{pods},code="500"}}[{w}]))'
              ' / sum(rate(http_requests_total{{{pods}}}[{w}])))')
NEW_PODS = "${canary}"  # the analysis's variable: the canary Deployment, the new slot


def error_rate_query(namespace: str, deployment: str | None = None) -> str:
    """One number: the 500 share of the traffic of the namespace's pods (of `deployment`'s
    only, when given); 0 while no such pod has two scrapes (right after a rollout the new
    pods are not yet discovered: that is not an error)."""
    pods = f'namespace="{namespace}"'
    if deployment is not None:  # <deployment>-<pod-template-hash>-<suffix>
        pods += f',pod=~"{deployment}-[0-9a-z]+-[0-9a-z]+"'
    return ERROR_RATE.format(pods=pods, w=RATE_WINDOW) + " or vector(0)"


def policy_text(registry: LocalRegistry, tls: TlsFiles, prometheus: LocalPrometheus) -> str:
    def service(name: str, analysis: str, strategy: str = "") -> str:
        return (f"  {name}:\n    registry: local\n    repository: {name}\n"
                "    environments:\n"
                f"      - name: {ENV}\n"
                "        target:\n"
                "          cluster: {name: sandbox, kubeconfigSecret: kubeconfig}\n"
                f"          namespace: {name}\n          deployment: {name}\n"
                "          container: app\n        rolloutTimeout: 1m\n" + analysis + strategy)

    def analysis(query: str) -> str:
        return ("        analysis:\n"
                f"          interval: {INTERVAL_S:g}s\n"
                f"          measurements: {MEASUREMENTS}\n"
                "          metrics:\n"
                "            - name: error-rate\n"
                "              prometheus:\n"
                f"                url: {prometheus.url}\n"
                f"                query: '{query}'\n"
                f"              threshold: {{max: {THRESHOLD}}}\n")

    canary = ("        strategy: {canary: {replicas: " f"{CANARY_REPLICAS},"
              f" weights: {CANARY_WEIGHTS}}}}}\n")
    blue_green = ("        strategy:\n          blueGreen:\n"
                  f"            previewService: {PREVIEW}\n"
                  f"            activeService: {BLUE_GREEN}\n"
                  f"            scaleDownDelay: {SCALE_DOWN_DELAY}\n"
                  "            prePromotionAnalysis: false\n"
                  "            postPromotionAnalysis: true\n")
    return ("version: 1\nregistries:\n"
            f"  local: {{url: \"{registry.endpoint}\", auth: anonymous, caBundle: \"{tls.ca}\"}}\n"
            "services:\n" + service(ROLLING, analysis(error_rate_query(ROLLING)))
            + service(PLAIN, "")
            + service(CANARY, analysis(error_rate_query(CANARY, NEW_PODS)), canary)
            + service(BLUE_GREEN, analysis(error_rate_query(BLUE_GREEN, NEW_PODS)),
                      blue_green))


# --- the cluster side ----------------------------------------------------------------------------

class TimedKube(WatchedKube):
    """The watched simulator, also noting each read: when it arrived and how long the
    simulator took to answer it (how many requests a restore makes before its PATCH, and
    how much of that time is the simulator's)."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.reads: list[tuple[float, float]] = []  # (time.time(), ms to answer)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "GET":
            return await super()._handle(request)
        arrived = time.time()
        try:
            return await super()._handle(request)
        finally:
            self.reads.append((arrived, (time.time() - arrived) * 1000))

    def reads_between(self, start: float, end: float) -> list[float]:
        """The answer times (ms) of the GETs that arrived from `start` until `end`."""
        return [ms for t, ms in self.reads if start <= t < end]


async def keep_targets(kube: TimedKube, prometheus: LocalPrometheus) -> None:
    """List the stand-ins' ports for Prometheus whenever they change (what `make run`'s
    stack would do); new targets still take Prometheus ~5 s to scrape."""
    listed: list[dict[str, Any]] | None = None
    while True:
        wanted = file_sd_targets(await asyncio.to_thread(kube.standins))
        if wanted != listed:
            prometheus.set_targets(wanted)
            listed = wanted
        await asyncio.sleep(SYNC_S)


def error_rate(prometheus: LocalPrometheus, query: str) -> float:
    (series,) = prometheus.query(query)
    return float(series["value"][1])


async def until_rate(prometheus: LocalPrometheus, query: str, above: bool,
                     since: float) -> float:
    """The first poll (time.time()) at which the error rate is above (or at most) THRESHOLD;
    NaN (pods scraped, no traffic in the window) counts as not above."""
    while time.time() - since < TIMEOUT_S:
        rate = await asyncio.to_thread(error_rate, prometheus, query)
        if (rate > THRESHOLD) == above:
            return time.time()
        await asyncio.sleep(POLL_S)
    raise RuntimeError(f"{query}: still {'below' if above else 'above'} {THRESHOLD}"
                       f" after {TIMEOUT_S:g} s")


def writes_to(kube: TimedKube, namespace: str, kind: str, name: str | None,
              since: float) -> list[float]:
    """When writes to the namespace's `kind` objects (creations included; with `name`, only
    to the object of that name) arrived."""
    folder = f"/namespaces/{namespace}/{kind}"
    return sorted(t for t, p in kube.writes if t >= since and folder in p
                  and (name is None or p.endswith(f"{folder}/{name}")))


def idle_slot(kube: TimedKube) -> str:
    """The blue-green slot the next release runs in: the one without pods (or missing)."""
    for slot in SLOTS[::-1]:
        try:
            replicas = kube.get("deployments", BLUE_GREEN, slot)["spec"]["replicas"]
        except ApiError:  # not made yet
            return slot
        if not replicas:
            return slot
    raise RuntimeError(f"both slots of {BLUE_GREEN} run pods")


# --- measuring -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reaction:
    deployed: float  # traffic reached the new version's pods (the deploy, shift or switch)
    crossed: float  # the error rate first seen above the threshold
    verdict: float  # the measurement that failed ended (its activity)
    measure_ms: float  # that measurement's activity time (the Prometheus query)
    rounds: int  # measurements taken, the failing one included
    restoring: float  # the restore activity began
    restored: float  # the restore's PATCH reached the simulator
    reads: list[float]  # the simulator's ms per GET from the restore's start to its PATCH
    events: int  # history events of the release and its sub-orchestration

    @property
    def reaction_s(self) -> float:
        return self.restored - self.crossed

    @property
    def visible_s(self) -> float:
        return self.crossed - self.deployed

    @property
    def own_ms(self) -> float:
        return (self.restored - self.verdict) * 1000

    @property
    def dispatch_ms(self) -> float:
        """The verdict -> the restore activity began: the orchestrator's episode, queues."""
        return (self.restoring - self.verdict) * 1000

    @property
    def timer_s(self) -> float:
        """Crossing -> the failing measurement began: waiting for the next interval."""
        return self.verdict - self.measure_ms / 1000 - self.crossed


@dataclass(frozen=True)
class Part:
    """One strategy's bad releases: the service, the query the bench polls for the new pods,
    and which writes (kind, name or any) send them traffic and restore (simulator paths)."""

    service: str
    query: Callable[[TimedKube], str]
    traffic: tuple[str, str | None]  # the first such write of the release
    restore: tuple[str, str | None]  # the first such write after the failed verdict
    traffic_last: bool = False  # the last such write before the verdict instead


PARTS = {
    "rolling": Part(ROLLING, lambda kube: error_rate_query(ROLLING),
                    ("deployments", None), ("deployments", None)),
    # the shift (the canary made or patched, then the stable scaled); the abort's first write
    "canary": Part(CANARY, lambda kube: error_rate_query(CANARY, CANARY_DEPLOYMENT),
                   ("deployments", None), ("deployments", CANARY_DEPLOYMENT)),
    # the switch of the active Service (after the preview's), and the switch back
    "blue-green": Part(BLUE_GREEN, lambda kube: error_rate_query(BLUE_GREEN, idle_slot(kube)),
                       ("services", BLUE_GREEN), ("services", BLUE_GREEN), traffic_last=True),
}


async def bad_release(engine: Any, log: InvocationLog, policy: Any, registry: LocalRegistry,
                      kube: TimedKube, prometheus: LocalPrometheus, part: Part, tag: str,
                      digest: str) -> Reaction:
    query = part.query(kube)
    kube.set_image_behaviour(digest, "ok", errors=ERRORS)
    await until_rate(prometheus, query, above=False, since=time.time())  # no bad pod seen
    log.take()
    started = time.time()
    rid = start_release(engine, policy, registry, part.service, tag, digest)
    crossed = await until_rate(prometheus, query, above=True, since=started)
    status = await engine.wait_for(rid, TIMEOUT_S)
    output = status.get("output") or {}
    if output.get("outcome") != "RolledBack" or "analysis failed" not in str(
            output.get("reason")):
        raise RuntimeError(f"release {rid} ended {output.get('outcome')}: {output!r}")
    activities = sorted((e for e in log.take() if e.kind == ACTIVITY), key=lambda e: e.ended)
    measures = [e for e in activities if e.name == MEASURE]
    failing = measures[-1]  # the analysis ends at its first failed measurement
    restoring = next(e for e in activities if e.name == RESTORE and e.ended > failing.ended)
    restored = writes_to(kube, part.service, *part.restore, since=failing.ended)[0]
    traffic = [t for t in writes_to(kube, part.service, *part.traffic, since=started)
               if t < failing.ended]
    return Reaction(deployed=traffic[-1] if part.traffic_last else traffic[0],
                    crossed=crossed, verdict=failing.ended, measure_ms=failing.ms,
                    rounds=len(measures), restoring=restoring.ended - restoring.ms / 1000,
                    restored=restored,
                    reads=kube.reads_between(restoring.ended - restoring.ms / 1000, restored),
                    events=sum(sum(c.values()) for c in history_of(engine, rid).values()))


async def good_release(engine: Any, policy: Any, registry: LocalRegistry, service: str,
                       digest: str) -> str:
    rid = start_release(engine, policy, registry, service, "v1.0.0", digest)
    status = await engine.wait_for(rid, TIMEOUT_S + INTERVAL_S * MEASUREMENTS * 2)
    if (status.get("output") or {}).get("outcome") != "Completed":
        raise RuntimeError(f"release {rid} ended {status.get('output')!r}")
    return rid


async def history_per_measurement(engine: Any, policy: Any, registry: LocalRegistry,
                                  digests: dict[str, str]) -> list[dict[str, Counter[str]]]:
    """Event types per instance of the release (with analysis, then without)."""
    counts = []
    for service in (ROLLING, PLAIN):
        rid = await good_release(engine, policy, registry, service, digests[service])
        counts.append({("env" if ":" in i else "release"): c
                       for i, c in history_of(engine, rid).items()})
    return counts


async def run(root: Path, tls: TlsFiles, azurite: Azurite, kube: TimedKube,
              registry: LocalRegistry, prometheus: LocalPrometheus
              ) -> tuple[dict[str, list[Reaction]], list[dict[str, Counter[str]]]]:
    policy_file = root / "policy.yaml"
    policy_file.write_text(policy_text(registry, tls, prometheus))
    policy = parse_policy(policy_file.read_text(), str(policy_file))
    os.environ.update({"AzureWebJobsStorage": azurite.connection_string,
                       "LEDGER_TABLE_PREFIX": "bench" + secrets.token_hex(4),
                       "RELEASE_POLICY_FILE": str(policy_file),
                       "REGISTRY_WEBHOOK_TOKEN": secrets.token_urlsafe(24),
                       "APPROVAL_SIGNING_KEY": secrets.token_urlsafe(48),
                       "APPROVAL_BASE_URL": "http://127.0.0.1:9",
                       "APPROVAL_IDENTITY": "token",
                       f"SECRETS__{ENV.upper()}__KUBECONFIG": kube.kubeconfig(TOKEN)})
    bad = [f"v2.{i}.0" for i in range(REPS)]
    wanted = ([(s, t) for s in (ROLLING, CANARY, BLUE_GREEN) for t in bad]
              + [(s, "v1.0.0") for s in (ROLLING, PLAIN, BLUE_GREEN)])
    digests = {}
    for service, tag in wanted:
        layout = build_image(root / "images" / f"{service}-{tag}", layer_sizes=[1024],
                             seed=f"{service}/{tag}", tag=tag)
        digests[service, tag] = push(layout, registry, service, tag)
    for service in (ROLLING, PLAIN, CANARY, BLUE_GREEN):
        kube.create_deployment(service, service, f"{registry.host}/{service}:old",
                               replicas=CANARY_REPLICAS if service == CANARY else 2)
        kube.create_service(service, service)
    kube.create_service(BLUE_GREEN, PREVIEW, {"app": BLUE_GREEN})

    log = InvocationLog()
    targets = asyncio.create_task(keep_targets(kube, prometheus))
    with collecting(log):
        try:
            async with app_host(root / "devhost") as host:
                engine = host.engine
                history: list[dict[str, Counter[str]]] = []
                reactions: dict[str, list[Reaction]] = {}
                for name, part in PARTS.items():  # traffic only where a part runs
                    kube.generate_traffic(part.service, part.service, TRAFFIC_RPS)
                    try:
                        if part.service == ROLLING:
                            history = await history_per_measurement(
                                engine, policy, registry,
                                {s: digests[s, "v1.0.0"] for s in (ROLLING, PLAIN)})
                        elif part.service == BLUE_GREEN:  # then the slots alternate
                            await good_release(engine, policy, registry, BLUE_GREEN,
                                               digests[BLUE_GREEN, "v1.0.0"])
                        reactions[name] = [
                            await bad_release(engine, log, policy, registry, kube, prometheus,
                                              part, tag, digests[part.service, tag])
                            for tag in bad]
                    finally:
                        kube.generate_traffic(part.service, part.service, 0)
        finally:
            targets.cancel()
            forget("sandbox")
    return reactions, history


# --- report --------------------------------------------------------------------------------------

LABELS = {  # what sent the new version traffic, and what restored
    "rolling": ("deploy PATCH", "restore PATCH (the Deployment back)"),
    "canary": ("first step's write", "abort PATCH (the canary to 0 pods)"),
    "blue-green": ("switch PATCH", "switch-back PATCH (the active Service)"),
}


def report_part(name: str, reactions: list[Reaction]) -> None:
    began, restore = LABELS[name]
    print(f"{name}: reaction, s ({len(reactions)} runs):")
    rows = [("", *(f"run {i + 1}" for i in range(len(reactions))), "median")]
    figures: list[tuple[str, Callable[[Reaction], float], str]] = [
        (f"{began} -> error rate above threshold (discovery + window)",
         lambda r: r.visible_s, "{:.2f}"),
        (f"error rate above threshold -> {restore}", lambda r: r.reaction_s, "{:.2f}"),
        ("  waiting for the next measurement (durable timer)", lambda r: r.timer_s,
         "{:.2f}"),
        ("  the failing measurement (Prometheus query), ms", lambda r: r.measure_ms,
         "{:.0f}"),
        ("  its verdict -> that PATCH, ms (our own)", lambda r: r.own_ms, "{:.0f}"),
        ("    verdict -> restore activity began, ms (episode, queues)",
         lambda r: r.dispatch_ms, "{:.0f}"),
        ("    restore activity began -> that PATCH, ms (its reads first)",
         lambda r: r.own_ms - r.dispatch_ms, "{:.0f}"),
        ("    GET requests it made before that PATCH", lambda r: len(r.reads), "{:.0f}"),
        ("    the simulator answering them, ms", lambda r: sum(r.reads), "{:.0f}"),
        (f"{began} -> that PATCH", lambda r: r.restored - r.deployed, "{:.2f}"),
        ("measurements taken (earlier ones: no new pod scraped twice yet)",
         lambda r: r.rounds, "{:.0f}"),
        ("history events, release + sub-orchestration", lambda r: r.events, "{:.0f}"),
    ]
    for label, value, fmt in figures:
        values = [value(r) for r in reactions]
        rows.append((label, *(fmt.format(v) for v in values),
                     fmt.format(statistics.median(values))))
    table(rows)
    print()


def report(reactions: dict[str, list[Reaction]],
           history: list[dict[str, Counter[str]]]) -> str:
    print(f"one Prometheus error-rate metric, interval {INTERVAL_S:g} s, {MEASUREMENTS}"
          f" measurements, max {THRESHOLD}, rate window {RATE_WINDOW}, 1 s scrape; the bad"
          f" images serve {ERRORS:.0%} errors; canary: replicas {CANARY_REPLICAS}, weights"
          f" {CANARY_WEIGHTS}, analysed over the canary's pods; blue-green: post-promotion"
          " analysis over the new slot's pods\n")
    for name, runs in reactions.items():
        report_part(name, runs)
    print("each reaction is made of: the wait for the next measurement (0 to one interval:"
          " the timer runs from the last one, not from the crossing), the measurement itself,"
          " and our own time from its verdict to the PATCH; Prometheus' discovery of the new"
          " pods (~5 s) and the rate window come before the crossing.")
    with_analysis, without = (sum(h["env"].values()) for h in history)
    per = (with_analysis - without) / MEASUREMENTS
    added = history[0]["env"] - history[1]["env"]
    release_with, release_without = (sum(sum(c.values()) for c in h.values()) for h in history)
    print(f"\nhistory events of the environment's sub-orchestration (rolling): {with_analysis}"
          f" with {MEASUREMENTS} measurements, {without} without analysis: {per:.1f} per"
          " measurement (" + ", ".join(f"{name} {n / MEASUREMENTS:g}"
                                       for name, n in added.most_common()) + ")")
    print(f"whole release (release + sub-orchestration): {release_with} with analysis,"
          f" {release_without} without\n")

    def median(name: str, value: Callable[[Reaction], float]) -> float:
        return statistics.median(value(r) for r in reactions[name])

    def most(name: str, value: Callable[[Reaction], float]) -> float:
        return max(value(r) for r in reactions[name])

    def reaction_s(r: Reaction) -> float:
        return r.reaction_s

    def own_ms(r: Reaction) -> float:
        return r.own_ms

    print_aims([
        *((f"{name}: {LABELS[name][1]} within one interval + 1 s ({AIM_REACTION_S:g} s) of"
           f" the crossing: median {median(name, reaction_s):.2f} s, max"
           f" {most(name, reaction_s):.2f} s", most(name, reaction_s) <= AIM_REACTION_S)
          for name in reactions),
        (f"blue-green: switch back within {AIM_SWITCH_BACK_MS / 1000:g} s of the failed"
         f" verdict: median {median('blue-green', own_ms):.0f} ms, max"
         f" {most('blue-green', own_ms):.0f} ms",
         most("blue-green", own_ms) <= AIM_SWITCH_BACK_MS),
        (f"< {AIM_HISTORY} history events per release without analysis: {release_without}",
         release_without < AIM_HISTORY),
    ])
    print()
    keys = {"": "rolling", "canary_": "canary", "bluegreen_": "blue-green"}
    return ("analysis: " + " ".join(
        f"{prefix}reaction_s={median(name, reaction_s):.2f}"
        f" {prefix}reaction_max_s={most(name, reaction_s):.2f}"
        f" {prefix}visible_s={median(name, lambda r: r.visible_s):.2f}"
        f" {prefix}verdict_to_{'restore' if name == 'rolling' else 'patch'}_ms="
        f"{median(name, own_ms):.0f}" for prefix, name in keys.items())
        + f" aim_s={AIM_REACTION_S:g}"
        f" bluegreen_verdict_to_patch_max_ms={most('blue-green', own_ms):.0f}"
        f" canary_events={median('canary', lambda r: r.events):.0f}"
        f" bluegreen_events={median('blue-green', lambda r: r.events):.0f}"
        f" history_with={with_analysis} history_without={without}"
        f" events_per_measurement={per:.1f} release_events_without={release_without}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="analysis-bench-") as temp:
        root = Path(temp)
        tls = make_throwaway_cert(root / "tls")
        with Azurite(root / "azurite") as azurite, \
                LocalRegistry(root / "registry", tls) as registry, \
                LocalPrometheus(root / "prometheus").start() as prometheus, \
                TimedKube(tls=tls, tokens={TOKEN: None}, rollout_seconds=0.0,
                          standins=True) as kube:
            reactions, history = asyncio.run(run(root, tls, azurite, kube, registry,
                                                 prometheus))
        print(report(reactions, history))


if __name__ == "__main__":
    main()
