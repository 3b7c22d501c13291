"""Benchmark of the Kubernetes adapter's deploy and rollback against the bare API calls.

Against `sandbox.kube.server.KubeSimulator` with zero-time rollouts (`rollout_seconds=0`),
over TLS (throwaway CA) with a bearer token limited to the bench namespace, as the product
connects, and with the real `kubernetes` client built from the simulator's kubeconfig:

- ours: `shared.cluster.deployments.Deployments` with its defaults. Deploy = `snapshot` →
  `deploy` → `await_rollout` until complete; rollback = `rollback(snapshot)` → `await_rollout`.
- bare: what `kubectl set image` and one look of `kubectl rollout status` send, made directly
  with `AppsV1Api`: `read_namespaced_deployment`, `patch_namespaced_deployment` (strategic
  merge, the container's image only: no annotations, no resourceVersion), one more
  `read_namespaced_deployment` that must show the rollout complete. A rollback is the same
  three calls putting the previous image back.

Each side has its own Deployment and ApiClient on the same simulator; the two sides take
turns (order swapped every iteration) so drift on a shared host hits both. Deploys alternate
between two digests and every rollback goes back to a third, so each deploy changes the
template while each Deployment keeps three ReplicaSets: the simulator deep-copies every object
on each request, and ten idle ReplicaSets (a fresh digest per deploy) would add ~8 ms of its
own to every request of both sides. Requests are the simulator's own log. After
the timed runs a few more iterations of each run under cProfile to show where the time
goes. Baseline and aim: /work/shared/notes/benchmarks.md. Prints figures and aims, asserts
nothing, and ends with one `deploy: key=value ...` summary line. Does not cover rollouts
that take time, failing images, conflicts or `history`.
"""

from __future__ import annotations

import cProfile
import hashlib
import pstats
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit import Timings, print_aims  # before the project: sets the import path
from kubernetes import client

from sandbox.kube.pytest_fixtures import api_client
from sandbox.kube.server import KubeSimulator
from sandbox.tls import make_throwaway_cert
from shared.cluster.deployments import (
    STRATEGIC_MERGE,
    Deployments,
    DeploymentTarget,
)
from shared.cluster.rollout import Snapshot

NAMESPACE = "bench"
CONTAINER = "app"
TOKEN = "bench-deployer-token"
WARMUPS = 10
ITERATIONS = 100
MIN_ITERATIONS = 30
TIME_BUDGET_S = 35.0  # for the timed iterations: fewer than ITERATIONS on a very busy host
PROFILED = 20
DEADLINE_S = 60.0
AIM_RATIO = 1.5
OPERATIONS = ("deploy", "rollback")
SIDES = ("ours", "bare")


def pinned(seed: str) -> str:
    return f"acr.io/delivery@sha256:{hashlib.sha256(seed.encode()).hexdigest()}"


FIRST_IMAGE = pinned("bench-deploy-first")
DEPLOYED_IMAGES = (pinned("bench-deploy-a"), pinned("bench-deploy-b"))


def image(n: int) -> str:
    """What iteration `n` deploys: the two images in turn (rollbacks return to FIRST_IMAGE)."""
    return DEPLOYED_IMAGES[n % 2]


@dataclass
class Measured(Timings):
    """One side of one operation: wall times, requests per run, the request sequence seen."""

    sequences: Counter[str] = field(default_factory=Counter)

    @property
    def sequence(self) -> str:
        """The most common request sequence (and how many runs sent another one)."""
        common, count = self.sequences.most_common(1)[0]
        other = sum(self.sequences.values()) - count
        return common + (f" (+{other} runs differed)" if other else "")


# --- the two sides ------------------------------------------------------------------------------

class Ours:
    """The product's adapter on its own Deployment."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        self.adapter = Deployments(api)
        self.target = DeploymentTarget("sandbox", NAMESPACE, name, CONTAINER)
        self.snapshot: Snapshot | None = None

    def deploy(self, new_image: str) -> None:
        self.snapshot = self.adapter.snapshot(self.target)
        result = self.adapter.deploy(self.target, new_image, f"bench deploy {new_image}",
                                     "bench-release")
        status = self.adapter.await_rollout(self.target, time.time() + DEADLINE_S)
        if not result.changed or not status.done:
            raise RuntimeError(f"our deploy of {new_image}: changed={result.changed},"
                               f" rollout {status.state}: {status.message}")

    def rollback(self) -> None:
        if self.snapshot is None:
            raise RuntimeError("rollback before any deploy")
        result = self.adapter.rollback(self.target, self.snapshot)
        status = self.adapter.await_rollout(self.target, time.time() + DEADLINE_S)
        if not result.changed or not status.done:
            raise RuntimeError(f"our rollback to {self.snapshot.image}: changed="
                               f"{result.changed}, rollout {status.state}: {status.message}")


class Bare:
    """The minimal calls with `AppsV1Api`: read, patch the image, read once to see it done."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        self.apps = client.AppsV1Api(api)
        self.name = name
        self.previous = FIRST_IMAGE

    def deploy(self, new_image: str) -> None:
        self.previous = self._set_image(new_image)

    def rollback(self) -> None:
        self._set_image(self.previous)

    def _set_image(self, new_image: str) -> str:
        before = self.apps.read_namespaced_deployment(self.name, NAMESPACE)
        running = next(c.image for c in before.spec.template.spec.containers
                       if c.name == CONTAINER)
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": CONTAINER, "image": new_image}]}}}}
        self.apps.patch_namespaced_deployment(self.name, NAMESPACE, patch,
                                              _content_type=STRATEGIC_MERGE)
        after = self.apps.read_namespaced_deployment(self.name, NAMESPACE)
        if not complete(after):
            raise RuntimeError(f"bare {running} -> {new_image}: rollout not complete on the"
                               f" first look: {after.status}")
        return running


def complete(deployment: Any) -> bool:
    """`kubectl rollout status`'s test: controller caught up, every replica updated+available."""
    status, desired = deployment.status, deployment.spec.replicas
    return ((status.observed_generation or 0) >= (deployment.metadata.generation or 0)
            and status.updated_replicas == desired and status.available_replicas == desired
            and status.replicas == desired)


# --- measuring ----------------------------------------------------------------------------------

def describe(requests: list[tuple[str, str]]) -> str:
    """`GET deployment, PATCH deployment, …` from the simulator's (method, path) log."""
    kinds = {"deployments": "deployment", "replicasets": "replicasets", "pods": "pods"}
    words = []
    for method, path in requests:
        parts = path.strip("/").split("/")
        kind = next((kinds[p] for p in reversed(parts) if p in kinds), path)
        words.append(f"{method} {kind}")
    return ", ".join(words)


def run(sim: KubeSimulator, action: Callable[[], None], into: Measured) -> None:
    sim.reset_requests()
    started = time.perf_counter()
    action()
    into.ms.append((time.perf_counter() - started) * 1000)
    requests = sim.requests()
    into.requests.append(len(requests))
    into.sequences[describe(requests)] += 1


def measure(sim: KubeSimulator, sides: dict[str, Any]) -> tuple[dict[tuple[str, str], Measured],
                                                                 int]:
    """Timed iterations (both sides, both operations each) and the next iteration number."""
    figures = {(side, op): Measured() for side in SIDES for op in OPERATIONS}
    scratch = {(side, op): Measured() for side in SIDES for op in OPERATIONS}
    n = 0
    while n < WARMUPS + ITERATIONS:
        n += 1
        if n == WARMUPS + 1:
            budget_end = time.perf_counter() + TIME_BUDGET_S
        elif n > WARMUPS + MIN_ITERATIONS and time.perf_counter() > budget_end:
            break
        into = figures if n > WARMUPS else scratch
        for side in SIDES if n % 2 else SIDES[::-1]:
            run(sim, lambda side=side, n=n: sides[side].deploy(image(n)), into[side, "deploy"])
            run(sim, sides[side].rollback, into[side, "rollback"])
    return figures, n + 1


@dataclass
class Breakdown:
    """Per operation, under cProfile (which inflates Python-heavy parts): where the ms go."""

    total: float
    http: float        # kubernetes.client.rest request: urllib3, TLS, the simulator's answer
    to_model: float    # ApiClient.response_deserialize: JSON -> pydantic models
    to_request: float  # ApiClient.param_serialize: headers, query, body
    to_dict: float     # ours only: Deployments._json, models back to camelCase dicts

    @property
    def rest(self) -> float:
        return self.total - self.http - self.to_model - self.to_request - self.to_dict


def profile(sides: dict[str, Any], first: int) -> dict[tuple[str, str], cProfile.Profile]:
    """PROFILED more iterations, one profiler per side and operation (only the operation)."""
    profilers = {(side, op): cProfile.Profile() for side in SIDES for op in OPERATIONS}
    for n in range(first, first + PROFILED):
        for side in SIDES:
            for op in OPERATIONS:
                action = getattr(sides[side], op)
                profiler = profilers[side, op]
                profiler.enable()
                if op == "deploy":
                    action(image(n))
                else:
                    action()
                profiler.disable()
    return profilers


def breakdown(stats: pstats.Stats, op: str) -> Breakdown:
    def cumulative_ms(file_suffix: str, function: str) -> float:
        found = [row[3] for (file, _, name), row in stats.stats.items()
                 if name == function and file.replace("\\", "/").endswith(file_suffix)]
        return sum(found) * 1000 / PROFILED

    return Breakdown(
        total=cumulative_ms("bench/deploy.py", op),
        http=cumulative_ms("kubernetes/client/rest.py", "request"),
        to_model=cumulative_ms("kubernetes/client/api_client.py", "response_deserialize"),
        to_request=cumulative_ms("kubernetes/client/api_client.py", "param_serialize"),
        to_dict=cumulative_ms("shared/cluster/deployments.py", "_json"))


def top_functions(profiler: cProfile.Profile, count: int = 8) -> list[str]:
    """The heaviest functions of one profiled operation by own time."""
    stats = pstats.Stats(profiler).stats
    rows = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:count]
    lines = []
    for (file, line, name), (_, calls, own, cumulative, _) in rows:
        where = "/".join(Path(file).parts[-2:]) if file != "~" else "builtin"
        lines.append(f"  {own * 1000 / PROFILED:6.2f} ms own  {cumulative * 1000 / PROFILED:6.2f}"
                     f" ms cum  {calls / PROFILED:6.1f} calls  {where}:{line} {name}")
    return lines


# --- report -------------------------------------------------------------------------------------

def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(row)).rstrip())


def extra(ours: Measured, bare: Measured) -> str:
    """Which requests ours sends beyond the bare calls (most common sequence of each)."""
    mine = Counter(ours.sequences.most_common(1)[0][0].split(", "))
    theirs = Counter(bare.sequences.most_common(1)[0][0].split(", "))
    more, fewer = mine - theirs, theirs - mine
    if not more and not fewer:
        return f"the same {ours.median_requests:g} as the bare calls"
    return ", ".join([f"+{n} {call}" for call, n in more.items()]
                     + [f"-{n} {call}" for call, n in fewer.items()]) + " vs the bare calls"


def report(figures: dict[tuple[str, str], Measured],
           profilers: dict[tuple[str, str], cProfile.Profile]) -> str:
    runs = len(figures["ours", "deploy"].ms)
    profiled = {key: breakdown(pstats.Stats(p), key[1]) for key, p in profilers.items()}
    ratio = {op: figures["ours", op].median / figures["bare", op].median for op in OPERATIONS}
    rows = [("", "ours", "bare", "ratio")]
    for op in OPERATIONS:
        ours, bare = figures["ours", op], figures["bare", op]
        rows += [
            (f"{op} median ms ({runs} runs)", f"{ours.median:.2f}", f"{bare.median:.2f}",
             f"{ratio[op]:.2f}"),
            (f"{op} p90 ms", f"{ours.p90:.2f}", f"{bare.p90:.2f}",
             f"{ours.p90 / bare.p90:.2f}"),
            (f"{op} requests", f"{ours.median_requests:g}", f"{bare.median_requests:g}",
             f"{ours.median_requests / bare.median_requests:.2f}"),
            (f"{op} ms per request", f"{ours.median / ours.median_requests:.2f}",
             f"{bare.median / bare.median_requests:.2f}",
             f"{(ours.median / ours.median_requests) / (bare.median / bare.median_requests):.2f}"),
        ]
    table(rows)
    print()
    for op in OPERATIONS:
        for side in SIDES:
            print(f"{op} {side}: {figures[side, op].sequence}")
    print()
    print(f"under cProfile, ms per operation ({PROFILED} runs each; profiling inflates Python"
          " time):")
    rows = [("", "total", "http", "json->model", "build req", "model->dict", "rest")]
    for op in OPERATIONS:
        for side in SIDES:
            b = profiled[side, op]
            rows.append((f"{op} {side}", f"{b.total:.2f}", f"{b.http:.2f}", f"{b.to_model:.2f}",
                         f"{b.to_request:.2f}", f"{b.to_dict:.2f}", f"{b.rest:.2f}"))
    table(rows)
    print()
    print("our deploy's heaviest functions by own time (cProfile, per deploy):")
    print("\n".join(top_functions(profilers["ours", "deploy"])))
    print()
    print("TLS (throwaway CA) + bearer token; zero-time rollouts; bare = read, image-only"
          " strategic-merge patch, read")
    print()

    requests = {key: m.median_requests for key, m in figures.items()}
    aims = [(f"{op}: ours <= {AIM_RATIO}x the bare calls: {figures['ours', op].median:.2f} ms"
             f" vs {figures['bare', op].median:.2f} ms = {ratio[op]:.2f}x",
             ratio[op] <= AIM_RATIO) for op in OPERATIONS]
    print_aims(aims)
    for op in OPERATIONS:
        print(f"requests {op}: {extra(figures['ours', op], figures['bare', op])}")
    print()
    return ("deploy: "
            f"ours_deploy_ms={figures['ours', 'deploy'].median:.2f}"
            f" ours_deploy_p90_ms={figures['ours', 'deploy'].p90:.2f}"
            f" bare_deploy_ms={figures['bare', 'deploy'].median:.2f}"
            f" bare_deploy_p90_ms={figures['bare', 'deploy'].p90:.2f}"
            f" ratio_deploy={ratio['deploy']:.2f}"
            f" ours_rollback_ms={figures['ours', 'rollback'].median:.2f}"
            f" ours_rollback_p90_ms={figures['ours', 'rollback'].p90:.2f}"
            f" bare_rollback_ms={figures['bare', 'rollback'].median:.2f}"
            f" bare_rollback_p90_ms={figures['bare', 'rollback'].p90:.2f}"
            f" ratio_rollback={ratio['rollback']:.2f}"
            f" requests_deploy={requests['ours', 'deploy']:g}"
            f" requests_bare_deploy={requests['bare', 'deploy']:g}"
            f" requests_rollback={requests['ours', 'rollback']:g}"
            f" requests_bare_rollback={requests['bare', 'rollback']:g}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="deploy-bench-") as temp:
        tls = make_throwaway_cert(Path(temp) / "tls")
        with KubeSimulator(tls=tls, tokens={TOKEN: {NAMESPACE}}, rollout_seconds=0.0) as sim:
            apis = {side: api_client(sim, TOKEN) for side in SIDES}
            try:
                for side in SIDES:
                    sim.create_deployment(NAMESPACE, side, FIRST_IMAGE, container=CONTAINER)
                sides = {"ours": Ours(apis["ours"], "ours"), "bare": Bare(apis["bare"], "bare")}
                figures, first = measure(sim, sides)
                profilers = profile(sides, first)
            finally:
                for api in apis.values():
                    api.close()
    print(report(figures, profilers))


if __name__ == "__main__":
    main()
