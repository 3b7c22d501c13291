"""Benchmark of the app's own telemetry: the same release with it on against off, same run.

Runs the product app (repo root) in `devhost.host.Host` on real parts (Azurite, the local OCI
registry over TLS, a Kubernetes API simulator with zero-time rollouts), one service QA ->
gate -> prod as bench/release.py's one-at-a-time releases, whose set-up it borrows. Releases
come in pairs, one with telemetry off and one on, which first alternating (on: the SDK's
in-memory exporters for spans, metrics and logs; an exporter's network time is not ours: it
runs on the SDK's own threads in production), after warm-ups of both; each is started as
ingestion starts it and approved as soon as it waits at its gate. Timed: start -> Completed
(wall) per release, the median of the per-pair ratios on/off; and, since a wall time on a
shared machine is noisier than the few milliseconds at stake, the time spent inside the
telemetry calls themselves (span emission and metric recording, timed by wrapping them here),
as a share of the median release without telemetry.

Aim (/work/shared/notes/benchmarks.md): < 5 % more time per release. Prints figures and the
aim, asserts nothing, and ends with one `telemetry: key=value ...` summary line.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchkit import (  # before the project: sets the import path
    BENCH,
    app_host,
    print_aims,
    quiet,
)

from sandbox.azurite import Azurite
from sandbox.registry import LocalRegistry
from sandbox.tls import make_throwaway_cert
from shared.cluster.clusters import forget
from shared.policy.loader import parse_policy
from shared.telemetry import metrics, spans
from shared.telemetry.pipelines import InMemory
from shared.telemetry.setup import install_in_memory, uninstall

WARMUPS = 2  # of each side
PAIRS = 20
SERVICE = "delivery"
AIM_RATIO = 1.05


class Stopwatch:
    """Wraps a function and adds up the time spent in it."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began
        return timed


def release_bench() -> Any:
    """bench/release.py as a module: its policy template, image pushes, start and approval."""
    spec = importlib.util.spec_from_file_location("release_bench", BENCH / "release.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["release_bench"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def one_release(rb: Any, engine: Any, policy: Any, registry: LocalRegistry, tag: str,
                      digest: str) -> float:
    """Start, approve at the gate, see it complete; wall milliseconds."""
    started = time.perf_counter()
    rid = rb.start_release(engine, policy, registry, SERVICE, tag, digest)
    deadline = time.monotonic() + rb.TIMEOUT_S
    while not rb.waiting_at_gate(engine, rid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{rid} never reached its gate")
        await asyncio.sleep(0.005)
    rb.approve(engine, rid)
    rb.check_completed(rid, await engine.wait_for(rid, rb.TIMEOUT_S))
    return (time.perf_counter() - started) * 1000


async def run(rb: Any, root: Path, watch: Stopwatch) -> tuple[list[float], list[float], int]:
    tls = make_throwaway_cert(root / "tls")
    with Azurite(root / "azurite") as azurite, rb.clusters(tls) as kubes, \
            LocalRegistry(root / "registry", tls) as registry:
        policy_file = root / "policy.yaml"
        policy_file.write_text(f"version: 1\nregistries:\n  local: {{url: \"{registry.endpoint}\","
                               f" auth: anonymous, caBundle: \"{tls.ca}\"}}\nservices:\n"
                               + rb.SERVICE_TEMPLATE.format(name=SERVICE, registry="local"))
        policy = parse_policy(policy_file.read_text(), str(policy_file))
        os.environ.update({"AzureWebJobsStorage": azurite.connection_string,
                           "LEDGER_TABLE_PREFIX": "tel" + secrets.token_hex(4),
                           "RELEASE_POLICY_FILE": str(policy_file),
                           "APPROVAL_SIGNING_KEY": secrets.token_urlsafe(48),
                           "APPROVAL_BASE_URL": "http://127.0.0.1:9",
                           "APPROVAL_IDENTITY": "token"})
        kube = kubes[SERVICE]
        for env in ("qa", "prod"):
            os.environ[f"SECRETS__{env.upper()}__KUBECONFIG_{SERVICE.upper()}"] = \
                kube.kubeconfig(rb.TOKEN)
            kube.create_deployment(env, SERVICE, rb.OLD_IMAGE)
        tags = [f"v1.{i}.0" for i in range(2 * (WARMUPS + PAIRS))]
        digests = rb.push_images(root, registry, [(SERVICE, t) for t in tags])
        off: list[float] = []
        on: list[float] = []
        emitted = 0
        try:
            async with app_host(root / "devhost") as host:
                for number, pair in enumerate(zip(tags[::2], tags[1::2], strict=True)):
                    timed: dict[bool, float] = {}
                    # Which side goes first alternates, so a drift of the machine cancels out.
                    for traced, tag in zip((number % 2 == 1, number % 2 == 0), pair, strict=True):
                        memory: InMemory | None = install_in_memory() if traced else None
                        timed[traced] = await one_release(rb, host.engine, policy, registry, tag,
                                                          digests[SERVICE, tag])
                        if memory is not None:
                            emitted = len(memory.spans.get_finished_spans())
                        uninstall()
                    if number + 1 == WARMUPS:
                        watch.seconds = 0.0
                    if number >= WARMUPS:
                        off.append(timed[False])
                        on.append(timed[True])
        finally:
            forget(SERVICE)
    return off, on, emitted


def main() -> None:
    rb = release_bench()
    watch = Stopwatch()
    spans.emit = watch.wrap(spans.emit)  # type: ignore[method-assign]
    metrics._record = watch.wrap(metrics._record)
    with quiet("devhost.invocations", "devhost"), \
            tempfile.TemporaryDirectory(prefix="telemetry-bench-") as temp:
        off, on, emitted = asyncio.run(run(rb, Path(temp), watch))
    ratios = [b / a for a, b in zip(off, on, strict=True)]
    ratio = statistics.median(ratios)
    print(f"releases: {len(off)} pairs, telemetry off and on, in-memory exporters")
    print(f"  off: median {statistics.median(off):.1f} ms  (min {min(off):.1f})")
    print(f"  on:  median {statistics.median(on):.1f} ms  (min {min(on):.1f}),"
          f" {emitted} spans per release")
    print(f"  per-pair ratio on/off: median {ratio:.3f}"
          f" (min {min(ratios):.3f}, max {max(ratios):.3f});"
          f" ratio of the medians {statistics.median(on) / statistics.median(off):.3f}")
    own_ms = watch.seconds * 1000 / len(on)
    share = own_ms / statistics.median(off)
    print(f"  inside the telemetry calls: {own_ms:.2f} ms per release"
          f" ({share * 100:.2f} % of the median release without)")
    print_aims([(f"telemetry on costs < 5 % more per release (wall {(ratio - 1) * 100:+.1f} %;"
                 f" its own calls {share * 100:.2f} %)", ratio < AIM_RATIO)])
    print(f"telemetry: pairs={len(off)} off_ms={statistics.median(off):.1f}"
          f" on_ms={statistics.median(on):.1f} ratio={ratio:.3f} own_ms={own_ms:.2f}"
          f" own_share={share:.4f} spans={emitted}")


if __name__ == "__main__":
    main()
