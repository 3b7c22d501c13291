"""Benchmark of devhost's Durable engine against Microsoft's in-memory Durable Task backend.

Runs `bench/apps/chain_app` through `devhost.host.Host` (real invoker with sync
activities in the thread pool, real SDK replay, SQLite task hub in a temp dir)
and measures: one 3-activity chain at a time, 200 chains at once, and the
replay of one episode at history lengths 10, 100 and 500 (the next length the
orchestrator writes: 10, 102, 502 events). In the same run, the
same chain on `durabletask`'s in-memory backend (nothing persisted) is the
baseline; see /work/shared/notes/benchmarks.md. Prints figures and aims, asserts
nothing, and ends with one `devhost: key=value ...` summary line.
Does not exercise the HTTP management API: the engine is called in-process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchkit import BENCH, print_aims, quiet  # before the project: sets the import path

from devhost.durable import history as h
from devhost.durable.replay import run_episode
from devhost.host import Host

APP_DIR = BENCH / "apps" / "chain_app"
CHAIN_WARMUPS = 5
CHAIN_RUNS = 50
CONCURRENT_CHAINS = 200
REPLAY_LENGTHS = (10, 100, 500)
REPLAY_BUDGET_S = 1.0  # per history length
TIMEOUT_S = 60.0
CHAIN_OUTPUT = ["Hello Tokyo", "Hello Seattle", "Hello London"]


@dataclass
class Figures:
    """What one side (devhost or the baseline) measured."""

    chain_ms: list[float] = field(default_factory=list)
    concurrent_s: float = 0.0
    concurrent_completed: int = 0
    replay_ms: dict[int, float] = field(default_factory=dict)
    replay_events: dict[int, int] = field(default_factory=dict)

    @property
    def chain_median_ms(self) -> float:
        return statistics.median(self.chain_ms)

    @property
    def chain_p90_ms(self) -> float:
        return statistics.quantiles(self.chain_ms, n=10)[-1]

    @property
    def per_s(self) -> float:
        return self.concurrent_completed / self.concurrent_s


# --- devhost -----------------------------------------------------------------------------------



async def measure_devhost() -> Figures:
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="devhost-bench-") as data_dir, \
            quiet("devhost.invocations", "devhost"):
        host = Host(APP_DIR, port=0, data_dir=data_dir)
        await host.start()
        try:
            engine = host.engine
            if engine is None:
                raise RuntimeError(f"{APP_DIR}: devhost found no durable functions in the app")
            for _ in range(CHAIN_WARMUPS):
                await run_chain(engine)
            for _ in range(CHAIN_RUNS):
                started = time.perf_counter()
                await run_chain(engine)
                figures.chain_ms.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            ids = [engine.start_new("chain") for _ in range(CONCURRENT_CHAINS)]
            statuses = await asyncio.gather(*(engine.wait_for(i, TIMEOUT_S) for i in ids))
            figures.concurrent_s = time.perf_counter() - started
            figures.concurrent_completed = sum(
                s["runtimeStatus"] == "Completed" and s["output"] == CHAIN_OUTPUT
                for s in statuses)

            histories = await replay_histories(engine)
            handle = engine.orchestrators["history"]
            orchestrator = getattr(handle, "orchestrator_function", handle)
        finally:
            await host.stop()
    for length, (calls, events, new_from) in histories.items():
        figures.replay_events[length] = len(events)
        figures.replay_ms[length] = time_replay(orchestrator, calls, events, new_from)
    return figures


async def run_chain(engine: Any) -> None:
    instance_id = engine.start_new("chain")
    status = await engine.wait_for(instance_id, TIMEOUT_S)
    if status["runtimeStatus"] != "Completed" or status["output"] != CHAIN_OUTPUT:
        raise RuntimeError(f"chain {instance_id} ended {status['runtimeStatus']}: "
                           f"{status['output']!r}")


async def replay_histories(engine: Any) -> dict[int, tuple[int, list[dict[str, Any]], int]]:
    """Per wanted length: (calls, history of the last episode, index where it starts).

    Each `history` run of k calls writes 4k + 4 events; without the final
    OrchestratorCompleted and ExecutionCompleted that is the 4k + 2 events its
    last episode replays. k is the smallest giving at least the wanted length.
    """
    calls = {length: max(1, -(-(length - 2) // 4)) for length in REPLAY_LENGTHS}
    ids = {length: engine.start_new("history", input_json=json.dumps(k))
           for length, k in calls.items()}
    prepared = {}
    for length, instance_id in ids.items():
        status = await engine.wait_for(instance_id, TIMEOUT_S)
        if status["runtimeStatus"] != "Completed":
            raise RuntimeError(f"history run {instance_id} ended {status['runtimeStatus']}")
        events = engine.store.history(instance_id)[:-2]
        starts = [i for i, e in enumerate(events)
                  if e["EventType"] == h.EventType.ORCHESTRATOR_STARTED]
        prepared[length] = (calls[length], events, starts[-1])
    return prepared


def time_replay(orchestrator: Callable[..., Any], calls: int, events: list[dict[str, Any]],
                new_from: int) -> float:
    """Median ms of replaying the last episode (which completes the orchestration)."""
    now = datetime.now(UTC)
    samples: list[float] = []
    budget_end = time.perf_counter() + REPLAY_BUDGET_S
    while len(samples) < 5 or (time.perf_counter() < budget_end and len(samples) < 500):
        started = time.perf_counter()
        episode = run_episode(orchestrator, instance_id="bench", parent_instance_id=None,
                              input_json=json.dumps(calls), history=events, new_from=new_from,
                              now=now)
        samples.append((time.perf_counter() - started) * 1000)
        if not episode.done or episode.output_json != json.dumps(calls):
            raise RuntimeError(f"replay of {len(events)} events did not complete: {episode}")
    return statistics.median(samples)


# --- baseline: durabletask's in-memory backend ------------------------------------------------

def measure_baseline() -> Figures:
    from durabletask import client as dt_client
    from durabletask import worker as dt_worker
    from durabletask.testing import create_test_backend

    def say_hello(ctx: Any, name: str) -> str:
        return f"Hello {name}"

    def chain(ctx: Any, _: Any) -> Any:
        tokyo = yield ctx.call_activity(say_hello, input="Tokyo")
        seattle = yield ctx.call_activity(say_hello, input="Seattle")
        london = yield ctx.call_activity(say_hello, input="London")
        return [tokyo, seattle, london]

    silent = logging.getLogger("bench.durabletask")
    silent.setLevel(logging.WARNING)
    figures = Figures()
    port = free_port()
    with quiet("durabletask.testing.in_memory_backend"):
        backend = create_test_backend(port=port)
        worker = dt_worker.TaskHubGrpcWorker(host_address=f"localhost:{port}", logger=silent)
        client = dt_client.TaskHubGrpcClient(host_address=f"localhost:{port}", logger=silent)
        try:
            worker.add_orchestrator(chain)
            worker.add_activity(say_hello)
            worker.start()

            def one_chain() -> None:
                instance_id = client.schedule_new_orchestration(chain)
                state = client.wait_for_orchestration_completion(instance_id, timeout=TIMEOUT_S)
                if state is None or state.get_output() != CHAIN_OUTPUT:
                    raise RuntimeError(f"baseline chain {instance_id} did not complete: {state}")

            for _ in range(CHAIN_WARMUPS):
                one_chain()
            for _ in range(CHAIN_RUNS):
                started = time.perf_counter()
                one_chain()
                figures.chain_ms.append((time.perf_counter() - started) * 1000)

            # Waits go one at a time (each pending wait holds one of the backend's 10 gRPC
            # threads), so the time is taken from the backend's last completion timestamp,
            # not from when the last wait returned: no round trip per finished chain counts.
            started_at = datetime.now(UTC)
            ids = [client.schedule_new_orchestration(chain) for _ in range(CONCURRENT_CHAINS)]
            states = [client.wait_for_orchestration_completion(i, timeout=TIMEOUT_S) for i in ids]
            last = max(s.last_updated_at.replace(tzinfo=UTC) for s in states if s is not None)
            figures.concurrent_s = (last - started_at).total_seconds()
            figures.concurrent_completed = sum(
                s is not None and s.runtime_status == dt_client.OrchestrationStatus.COMPLETED
                and s.get_output() == CHAIN_OUTPUT for s in states)
        finally:
            silent.setLevel(logging.ERROR)  # the worker warns that stop() cancelled its stream
            worker.stop()
            client.close()
            backend.stop()
            backend.reset()
    return figures


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- report ------------------------------------------------------------------------------------

def report(dev: Figures, base: Figures) -> str:
    ratio_chain = dev.chain_median_ms / base.chain_median_ms
    ratio_200 = dev.concurrent_s / base.concurrent_s
    rows = [
        ("", "devhost", "baseline", "ratio"),
        (f"chain median ms ({CHAIN_RUNS} runs)", f"{dev.chain_median_ms:.1f}",
         f"{base.chain_median_ms:.1f}", f"{ratio_chain:.2f}"),
        ("chain p90 ms", f"{dev.chain_p90_ms:.1f}", f"{base.chain_p90_ms:.1f}", ""),
        (f"{CONCURRENT_CHAINS} chains s", f"{dev.concurrent_s:.2f}", f"{base.concurrent_s:.2f}",
         f"{ratio_200:.2f}"),
        (f"{CONCURRENT_CHAINS} chains per s", f"{dev.per_s:.0f}", f"{base.per_s:.0f}", ""),
        (f"{CONCURRENT_CHAINS} chains completed", str(dev.concurrent_completed),
         str(base.concurrent_completed), ""),
    ]
    for length in REPLAY_LENGTHS:
        rows.append((f"replay ms, {dev.replay_events[length]} events",
                     f"{dev.replay_ms[length]:.2f}", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(row)))
    print()
    aims = [
        (f"chain median <= 2x baseline and < 50 ms: {dev.chain_median_ms:.1f} ms, "
         f"{ratio_chain:.2f}x", ratio_chain <= 2 and dev.chain_median_ms < 50),
        (f"{CONCURRENT_CHAINS} chains <= 2x baseline and < 20 s: {dev.concurrent_s:.2f} s, "
         f"{ratio_200:.2f}x", ratio_200 <= 2 and dev.concurrent_s < 20),
        (f"all {CONCURRENT_CHAINS} chains completed: {dev.concurrent_completed}",
         dev.concurrent_completed == CONCURRENT_CHAINS),
    ]
    print_aims(aims)
    print()
    return ("devhost: "
            f"chain_median_ms={dev.chain_median_ms:.1f} chain_p90_ms={dev.chain_p90_ms:.1f} "
            f"chains200_s={dev.concurrent_s:.2f} chains200_per_s={dev.per_s:.0f} "
            + " ".join(f"replay{n}_ms={dev.replay_ms[n]:.2f}" for n in REPLAY_LENGTHS)
            + f" baseline_chain_median_ms={base.chain_median_ms:.1f}"
            f" baseline_chains200_s={base.concurrent_s:.2f}"
            f" ratio_chain={ratio_chain:.2f} ratio_200={ratio_200:.2f}")


def main() -> None:
    dev = asyncio.run(measure_devhost())
    base = measure_baseline()
    print(report(dev, base))


if __name__ == "__main__":
    main()
