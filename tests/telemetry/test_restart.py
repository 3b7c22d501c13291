"""Spans survive a restart of the host: a release waiting at its gate when devhost stops is
replayed by the next host from its history, and no step gets a second span."""

from __future__ import annotations

import asyncio
from collections import Counter

from devhost.durable.clock import VirtualClock
from devhost.host import Host
from shared.telemetry import ids
from shared.telemetry.pipelines import InMemory
from tests.releases.release_rig import REPO, Released, ReleaseStack, outcome, virtual_start
from tests.telemetry.test_release_trace import spans_of, steps


def test_restarting_devhost_at_the_gate_leaves_one_span_per_step(
        stack: ReleaseStack, exported: InMemory) -> None:
    digest = stack.push("v1.0.0")
    data_dir = stack.tmp_path / "devhost"

    async def main() -> tuple[str, Counter[tuple[str | None, str]]]:
        clock = VirtualClock(virtual_start())
        host = Host(REPO, port=0, data_dir=data_dir, clock=clock)
        await host.start()
        try:
            run = Released(stack, host, clock)
            release = run.start("v1.0.0", digest)
            await run.at_gate(release)
        finally:
            await host.stop()
        before = steps(spans_of(exported))

        clock = VirtualClock(max(clock.now(), virtual_start()))  # a new host, on the same hub
        host = Host(REPO, port=0, data_dir=data_dir, clock=clock)
        await host.start()
        try:
            run = Released(stack, host, clock)
            assert run.status(release)["runtimeStatus"] == "Running"
            run.approve(release)
            done = await run.finished(release)
            assert outcome(done) == "Completed", done
        finally:
            await host.stop()
        return release, before

    try:
        release, before = asyncio.run(main())
    finally:
        stack.teams.stop()
    # Before the stop: QA's steps and its environment; the gate was still open.
    assert before == Counter({("qa", "environment"): 1, ("qa", "deploy"): 1,
                              ("qa", "readiness"): 1})
    spans = spans_of(exported)
    assert steps(spans) == Counter({
        (None, "release"): 1, ("qa", "environment"): 1, ("prod", "environment"): 1,
        ("qa", "deploy"): 1, ("qa", "readiness"): 1,
        ("prod", "gate"): 1, ("prod", "promotion"): 1, ("prod", "deploy"): 1,
        ("prod", "readiness"): 1})
    assert len({s.context.span_id for s in spans}) == len(spans)
    assert {s.context.trace_id for s in spans} == {ids.trace_id(release)}

