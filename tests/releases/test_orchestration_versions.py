"""A release waiting at its gate under orchestration version 1.0 finishes after a deployment
of 1.1 whose release orchestrator changed in a way that does not replay over 1.0 histories.

The 1.1 orchestrator is today's `orchestrations/release.py`, loaded as its own module, with
one change taken only by instances of 1.1 and later: the approval settings are checked again
just before a gate asks for approval. A 1.0 release already waiting at that gate recorded
`request_approval` where 1.1 code schedules `check_approval_settings`: without the
`context.version` branch its replay would fail. The repository's host.json says 1.0; the
redeployed host gets 1.1 from the app setting that overrides host.json
(`AzureFunctionsJobHost__extensions__durableTask__defaultVersion`), as an operator could.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Generator
from types import ModuleType
from typing import Any

import pytest
from release_rig import REPO, Released, ReleaseStack, outcome, virtual_start

import orchestrations
import orchestrations.operations  # noqa: F401 (imported with today's release module first)
import orchestrations.release
from devhost.durable.clock import VirtualClock
from devhost.host import Host

DEFAULT_VERSION = "AzureFunctionsJobHost__extensions__durableTask__defaultVersion"


def at_least(version: str | None, wanted: str) -> bool:
    """Whether an instance's `context.version` is `wanted` or newer (unversioned is older)."""
    if not version:
        return False
    return [int(p) for p in version.split(".")] >= [int(p) for p in wanted.split(".")]


def release_1_1() -> ModuleType:
    """Today's release orchestrator as the 1.1 deployment ships it: its own module and
    blueprint, with the 1.1 change behind `context.version`."""
    spec = importlib.util.spec_from_file_location(
        "release_1_1", REPO / "orchestrations" / "release.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = module.wait_for_approval

    def wait_for_approval(context: Any, plan: Any, stage: Any,
                          journal: Any) -> Generator[Any, Any, Any]:
        if at_least(context.version, "1.1"):  # new in 1.1; 1.0 histories never had it
            yield context.call_activity("check_approval_settings", {
                "service": plan.service, "gates": plan.gates})
        return (yield from before(context, plan, stage, journal))

    module.wait_for_approval = wait_for_approval
    return module


def scheduled(run: Released, release: str) -> list[str]:
    return [e["Name"] for e in run.history(release) if e["EventType"] == "TaskScheduled"]


def test_a_release_waiting_at_its_gate_under_1_0_completes_under_1_1(
        stack: ReleaseStack, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = stack.push("v1.0.0")
    data_dir = stack.tmp_path / "devhost"
    monkeypatch.delenv(DEFAULT_VERSION, raising=False)

    async def main() -> None:
        clock = VirtualClock(virtual_start())
        host = Host(REPO, port=0, data_dir=data_dir, clock=clock)  # host.json: 1.0
        await host.start()
        try:
            run = Released(stack, host, clock)
            release = run.start("v1.0.0", digest)
            waiting = await run.at_gate(release)
            recorded = scheduled(run, release)
        finally:
            await host.stop()
        assert waiting["version"] == "1.0"
        assert recorded.count("check_approval_settings") == 1 and "request_approval" in recorded

        # The 1.1 deployment: new code and defaultVersion on the same task hub, later.
        clock = VirtualClock(max(clock.now(), virtual_start()))
        with pytest.MonkeyPatch.context() as deployed:
            new = release_1_1()
            deployed.setitem(sys.modules, "orchestrations.release", new)
            deployed.setattr(orchestrations, "release", new)
            deployed.setenv(DEFAULT_VERSION, "1.1")
            host = Host(REPO, port=0, data_dir=data_dir, clock=clock)
            await host.start()
            try:
                assert host.settings.versioning.default_version == "1.1"
                run = Released(stack, host, clock)
                run.approve(release)
                done = await run.finished(release)
                assert done["runtimeStatus"] == "Completed", done["output"]  # replayed
                assert outcome(done) == "Completed", done
                assert done["version"] == "1.0"
                names = scheduled(run, release)
                assert names[:len(recorded)] == recorded  # the 1.0 path, as recorded
                assert names.count("check_approval_settings") == 1
                assert stack.image("prod") == stack.image_in("prod", digest)

                fresh = run.start("v1.0.1", stack.push("v1.0.1"))  # a 1.1 release
                status = await run.at_gate(fresh)
                assert status["version"] == "1.1"
                assert scheduled(run, fresh).count("check_approval_settings") == 2
                run.assert_no_secrets_anywhere()
            finally:
                await host.stop()

    try:
        asyncio.run(main())
    finally:
        stack.teams.stop()
