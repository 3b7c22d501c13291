"""Benchmark of a release's analysis on devhost (system clock): how fast a failing error rate
rolls a rolling deploy back, and what each measurement costs in history.

Real parts: Azurite (ledger), the local OCI registry (TLS), the Kubernetes simulator with
stand-ins (`standins=True`, wall-clock rollouts in 0 s) behind a Service `delivery` that gets
TRAFFIC_RPS requests/s, and Debian's Prometheus (1 s scrape) whose file_sd file this bench keeps
in step with `sim.standins()` every SYNC_S. One environment, no gate; its analysis is one
Prometheus error-rate metric (interval 5 s, max 0.1), `... or vector(0)`: right after a
rollout the old pods' series end and the new pods are not scraped yet (~5 s), and that gap
is not an error rate (without it `onNoData` would decide). Measured:

1. reaction: a healthy version runs (created directly); a release of an image whose stand-ins
   answer 50 % errors; from the moment the error rate (the same query, polled by the bench
   every POLL_S) crosses the threshold to the restore PATCH reaching the simulator. Also the
   parts before it: deploy PATCH -> crossing (Prometheus discovering the new pods + the rate
   window), the wait for the next measurement, the failing measurement, and its verdict ->
   the restore PATCH (our own time). REPS runs, medians.
2. history events of the environment's sub-orchestration with MEASUREMENTS measurements
   against the same release of a service without analysis, per measurement; and the whole
   release's history without analysis (aim < 100).
3. blue-green switch-back: not measured (blue-green is not released yet).

Baseline and aims: /work/shared/notes/benchmarks.md. Prints figures and aims, asserts
nothing, ends with one `analysis: key=value ...` summary line.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import statistics
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit import REPO, print_aims  # before the project: sets the import path

from bench.release import (
    ACTIVITY,
    InvocationLog,
    WatchedKube,
    collecting,
    history_of,
    start_release,
    table,
)
from devhost.host import Host
from sandbox.azurite import Azurite
from sandbox.images import build_image, push
from sandbox.kube.standins import file_sd_targets
from sandbox.prometheus import LocalPrometheus
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles, make_throwaway_cert
from shared.cluster.clusters import forget
from shared.policy.loader import parse_policy

MEASURED, PLAIN = "delivery", "plain"  # with and without analysis; namespace = service name
ENV = "prod"
TOKEN = "bench-analysis-admin"
INTERVAL_S = 5.0
MEASUREMENTS = 3
THRESHOLD = 0.1
ERRORS = 0.5
RATE_WINDOW = "3s"  # three 1 s scrapes: the shortest window rate() reads reliably
REPS = 5
TRAFFIC_RPS = 40.0
POLL_S = 0.05
SYNC_S = 0.2
TIMEOUT_S = 60.0
MEASURE = "measure_analysis"
AIM_REACTION_S = INTERVAL_S + 1.0
AIM_HISTORY = 100
ERROR_RATE = ('(sum(rate(http_requests_total{{namespace="{ns}",code="500"}}[{w}]))'
              ' / sum(rate(http_requests_total{{namespace="{ns}"}}[{w}])))')


def error_rate_query(namespace: str) -> str:
    """One number: the 500 share of the namespace's traffic; 0 while no pod has two scrapes
    (right after a rollout the new pods are not yet discovered: that is not an error)."""
    return ERROR_RATE.format(ns=namespace, w=RATE_WINDOW) + " or vector(0)"


def policy_text(registry: LocalRegistry, tls: TlsFiles, prometheus: LocalPrometheus) -> str:
    def service(name: str, analysis: str) -> str:
        return (f"  {name}:\n    registry: local\n    repository: {name}\n"
                "    environments:\n"
                f"      - name: {ENV}\n"
                "        target:\n"
                "          cluster: {name: sandbox, kubeconfigSecret: kubeconfig}\n"
                f"          namespace: {name}\n          deployment: {name}\n"
                "          container: app\n        rolloutTimeout: 1m\n" + analysis)

    analysis = (
        "        analysis:\n"
        f"          interval: {INTERVAL_S:g}s\n"
        f"          measurements: {MEASUREMENTS}\n"
        "          metrics:\n"
        "            - name: error-rate\n"
        "              prometheus:\n"
        f"                url: {prometheus.url}\n"
        f"                query: '{error_rate_query(MEASURED)}'\n"
        f"              threshold: {{max: {THRESHOLD}}}\n")
    return ("version: 1\nregistries:\n"
            f"  local: {{url: \"{registry.endpoint}\", auth: anonymous, caBundle: \"{tls.ca}\"}}\n"
            "services:\n" + service(MEASURED, analysis) + service(PLAIN, ""))


# --- the cluster side ----------------------------------------------------------------------------

def create_service(kube: WatchedKube, tls: TlsFiles, namespace: str, name: str) -> None:
    """A Service selecting `app: <name>`, created through the API as kubectl would."""
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}
    request = urllib.request.Request(
        f"{kube.url}/api/v1/namespaces/{namespace}/services", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=ssl.create_default_context(
            cafile=str(tls.ca)), timeout=10) as answer:
        answer.read()


async def keep_targets(kube: WatchedKube, prometheus: LocalPrometheus) -> None:
    """List the stand-ins' ports for Prometheus whenever they change (what `make run`'s
    stack would do); new targets still take Prometheus ~5 s to scrape."""
    listed: list[dict[str, Any]] | None = None
    while True:
        wanted = file_sd_targets(await asyncio.to_thread(kube.standins))
        if wanted != listed:
            prometheus.set_targets(wanted)
            listed = wanted
        await asyncio.sleep(SYNC_S)


def error_rate(prometheus: LocalPrometheus) -> float:
    (series,) = prometheus.query(error_rate_query(MEASURED))
    return float(series["value"][1])


async def until_rate(prometheus: LocalPrometheus, above: bool, since: float) -> float:
    """The first poll (time.time()) at which the error rate is above (or at most) THRESHOLD."""
    while time.time() - since < TIMEOUT_S:
        rate = await asyncio.to_thread(error_rate, prometheus)
        if (rate > THRESHOLD) == above:
            return time.time()
        await asyncio.sleep(POLL_S)
    raise RuntimeError(f"error rate still {'below' if above else 'above'} {THRESHOLD}"
                       f" after {TIMEOUT_S:g} s")


def deployment_writes(kube: WatchedKube, namespace: str, since: float) -> list[float]:
    path = f"/namespaces/{namespace}/deployments/"
    return sorted(t for t, p in kube.writes if t >= since and path in p)


# --- measuring -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reaction:
    deployed: float  # the deploy PATCH reached the simulator
    crossed: float  # the error rate first seen above the threshold
    verdict: float  # the measurement that failed ended (its activity)
    measure_ms: float  # that measurement's activity time (the Prometheus query)
    rounds: int  # measurements taken, the failing one included
    restored: float  # the restore PATCH reached the simulator

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
    def timer_s(self) -> float:
        """Crossing -> the failing measurement began: waiting for the next interval."""
        return self.verdict - self.measure_ms / 1000 - self.crossed


async def bad_release(engine: Any, log: InvocationLog, policy: Any, registry: LocalRegistry,
                      kube: WatchedKube, prometheus: LocalPrometheus, tag: str,
                      digest: str) -> Reaction:
    kube.set_image_behaviour(digest, "ok", errors=ERRORS)
    await until_rate(prometheus, above=False, since=time.time())  # the healthy one is seen
    log.take()
    started = time.time()
    rid = start_release(engine, policy, registry, MEASURED, tag, digest)
    crossed = await until_rate(prometheus, above=True, since=started)
    status = await engine.wait_for(rid, TIMEOUT_S)
    outcome = (status.get("output") or {}).get("outcome")
    if outcome != "RolledBack":
        raise RuntimeError(f"release {rid} ended {outcome}: {status.get('output')!r}")
    writes = deployment_writes(kube, MEASURED, started)
    restored = min(t for t in writes if t > crossed)
    measures = [e for e in log.take() if e.kind == ACTIVITY and e.name == MEASURE
                and e.ended <= restored]
    failing = max(measures, key=lambda e: e.ended)
    return Reaction(deployed=writes[0], crossed=crossed, verdict=failing.ended,
                    measure_ms=failing.ms, rounds=len(measures), restored=restored)


async def history_per_measurement(engine: Any, policy: Any, registry: LocalRegistry,
                                  digests: dict[str, str]) -> list[dict[str, Counter[str]]]:
    """Event types per instance of the release (with analysis, then without)."""
    counts = []
    for service in (MEASURED, PLAIN):
        rid = start_release(engine, policy, registry, service, "v1.0.0", digests[service])
        status = await engine.wait_for(rid, TIMEOUT_S + INTERVAL_S * MEASUREMENTS)
        if (status.get("output") or {}).get("outcome") != "Completed":
            raise RuntimeError(f"release {rid} ended {status.get('output')!r}")
        counts.append({("env" if ":" in i else "release"): c
                       for i, c in history_of(engine, rid).items()})
    return counts


async def run(root: Path, tls: TlsFiles, azurite: Azurite, kube: WatchedKube,
              registry: LocalRegistry, prometheus: LocalPrometheus
              ) -> tuple[list[Reaction], list[dict[str, Counter[str]]]]:
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
    tags = ["v1.0.0", *(f"v2.{i}.0" for i in range(REPS))]
    digests = {}
    for service, tag in [(MEASURED, t) for t in tags] + [(PLAIN, "v1.0.0")]:
        layout = build_image(root / "images" / f"{service}-{tag}", layer_sizes=[1024],
                             seed=f"{service}/{tag}", tag=tag)
        digests[service, tag] = push(layout, registry, service, tag)
    for service in (MEASURED, PLAIN):
        kube.create_deployment(service, service, f"{registry.host}/{service}:old")
        create_service(kube, tls, service, service)
    kube.generate_traffic(MEASURED, MEASURED, TRAFFIC_RPS)

    log = InvocationLog()
    targets = asyncio.create_task(keep_targets(kube, prometheus))
    with collecting(log):
        host = Host(REPO, port=0, data_dir=root / "devhost")
        await host.start()
        try:
            if host.engine is None or host.timers is None:
                raise RuntimeError(f"{REPO}: devhost found no durable functions in the app")
            await host.timers.stop()
            history = await history_per_measurement(
                host.engine, policy, registry,
                {s: digests[s, "v1.0.0"] for s in (MEASURED, PLAIN)})
            reactions = [await bad_release(host.engine, log, policy, registry, kube,
                                           prometheus, tag, digests[MEASURED, tag])
                         for tag in tags[1:]]
        finally:
            targets.cancel()
            kube.generate_traffic(MEASURED, MEASURED, 0)
            await host.stop()
            forget("sandbox")
    return reactions, history


# --- report --------------------------------------------------------------------------------------

def report(reactions: list[Reaction], history: list[dict[str, Counter[str]]]) -> str:
    print(f"reaction, s ({len(reactions)} runs; one Prometheus error-rate metric, interval"
          f" {INTERVAL_S:g} s, max {THRESHOLD}, rate window {RATE_WINDOW}, 1 s scrape; the"
          f" bad image serves {ERRORS:.0%} errors):")
    rows = [("", *(f"run {i + 1}" for i in range(len(reactions))), "median")]
    figures = [
        ("deploy PATCH -> error rate above threshold (discovery + window)",
         lambda r: r.visible_s, "{:.2f}"),
        ("error rate above threshold -> restore PATCH (reaction)", lambda r: r.reaction_s,
         "{:.2f}"),
        ("  waiting for the next measurement (durable timer)", lambda r: r.timer_s,
         "{:.2f}"),
        ("  the failing measurement (Prometheus query), ms", lambda r: r.measure_ms,
         "{:.0f}"),
        ("  its verdict -> restore PATCH, ms (our own)", lambda r: r.own_ms, "{:.0f}"),
        ("deploy PATCH -> restore PATCH", lambda r: r.restored - r.deployed, "{:.2f}"),
        ("measurements taken (earlier ones: no new pod scraped twice yet)",
         lambda r: r.rounds, "{:.0f}"),
    ]
    for label, value, fmt in figures:
        values = [value(r) for r in reactions]
        rows.append((label, *(fmt.format(v) for v in values),
                     fmt.format(statistics.median(values))))
    table(rows)
    print("the reaction is made of: the wait for the next measurement (0 to one interval: the"
          " timer runs from the last one, not from the crossing), the measurement itself, and"
          " our own time from its verdict to the restore PATCH; Prometheus' discovery of the"
          " new pods (~5 s) and the rate window come before the crossing.")
    with_analysis, without = (sum(h["env"].values()) for h in history)
    per = (with_analysis - without) / MEASUREMENTS
    added = history[0]["env"] - history[1]["env"]
    release_with, release_without = (sum(sum(c.values()) for c in h.values()) for h in history)
    print(f"\nhistory events of the environment's sub-orchestration: {with_analysis} with"
          f" {MEASUREMENTS} measurements, {without} without analysis: {per:.1f} per"
          " measurement (" + ", ".join(f"{name} {n / MEASUREMENTS:g}"
                                       for name, n in added.most_common()) + ")")
    print(f"whole release (release + sub-orchestration): {release_with} with analysis,"
          f" {release_without} without")
    print("blue-green switch back after a failed verdict: not measured: blue-green is not"
          " released yet\n")
    reaction = statistics.median(r.reaction_s for r in reactions)
    own = statistics.median(r.own_ms for r in reactions)
    print_aims([
        (f"abort patch within one interval + 1 s ({AIM_REACTION_S:g} s) of the crossing:"
         f" median {reaction:.2f} s, max {max(r.reaction_s for r in reactions):.2f} s",
         max(r.reaction_s for r in reactions) <= AIM_REACTION_S),
        (f"< {AIM_HISTORY} history events per release without analysis: {release_without}",
         release_without < AIM_HISTORY),
    ])
    return (f"analysis: reaction_s={reaction:.2f}"
            f" reaction_max_s={max(r.reaction_s for r in reactions):.2f}"
            f" aim_s={AIM_REACTION_S:g}"
            f" visible_s={statistics.median(r.visible_s for r in reactions):.2f}"
            f" verdict_to_restore_ms={own:.0f} history_with={with_analysis}"
            f" history_without={without} events_per_measurement={per:.1f}"
            f" release_events_without={release_without}"
            " bluegreen_switchback=not_measured")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="analysis-bench-") as temp:
        root = Path(temp)
        tls = make_throwaway_cert(root / "tls")
        with Azurite(root / "azurite") as azurite, \
                LocalRegistry(root / "registry", tls) as registry, \
                LocalPrometheus(root / "prometheus").start() as prometheus, \
                WatchedKube(tls=tls, tokens={TOKEN: None}, rollout_seconds=0.0,
                            standins=True) as kube:
            reactions, history = asyncio.run(run(root, tls, azurite, kube, registry,
                                                 prometheus))
        print(report(reactions, history))


if __name__ == "__main__":
    main()
