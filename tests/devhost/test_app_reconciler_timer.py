"""The app's reconciler timer under devhost: its schedule is the app setting
RECONCILE_SCHEDULE (`%RECONCILE_SCHEDULE%`), a start without it is refused naming both, and
`POST /admin/functions/reconcile_registries` runs it at once against a real registry and
Azurite."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from devhost.durable.clock import VirtualClock
from devhost.host import Host
from devhost.timers import CronSchedule, IntervalSchedule, ScheduleError
from sandbox.azurite import Azurite
from sandbox.images import build_image, push
from sandbox.registry import LocalRegistry
from sandbox.stack_policy import RECONCILE_SCHEDULE
from sandbox.tls import TlsFiles
from shared.ledger.aio import close_clients
from shared.ledger.store import Ledger
from triggers.reconciler import DEFAULT_SCHEDULE

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
NAME = "reconcile_registries"


async def started(tmp_path: Path) -> Host:
    host = Host(REPO, port=0, data_dir=tmp_path / "devhost", clock=VirtualClock(T0))
    await host.start()
    return host


async def first_occurrence(host: Host) -> datetime:
    assert host.timers is not None
    trigger = host.timers.triggers[NAME]
    while trigger.next_occurrence is None:
        await asyncio.sleep(0.01)
    return trigger.next_occurrence


@pytest.mark.parametrize(("setting", "schedule", "first"), [
    ("0 0 */6 * * *", CronSchedule("0 0 */6 * * *"), "2026-01-01T06:00:00+00:00"),
    ("0 */5 * * * *", CronSchedule("0 */5 * * * *"), "2026-01-01T00:05:00+00:00"),
    ("00:00:30", IntervalSchedule(timedelta(seconds=30)), "2026-01-01T00:00:32+00:00"),
])
def test_the_schedule_is_the_app_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture, setting: str,
                                         schedule: object, first: str) -> None:
    monkeypatch.setenv("RECONCILE_SCHEDULE", setting)
    caplog.set_level(logging.INFO, logger="devhost")

    async def main() -> tuple[object, object, datetime]:
        host = await started(tmp_path)
        try:
            assert host.timers is not None
            trigger = host.timers.triggers[NAME]
            return trigger.function.trigger["schedule"], trigger.schedule, \
                await first_occurrence(host)
        finally:
            await host.stop()

    declared, parsed, due = asyncio.run(main())
    assert declared == "%RECONCILE_SCHEDULE%"
    assert (parsed, due.isoformat()) == (schedule, first)
    assert f"  {NAME}: timerTrigger '%RECONCILE_SCHEDULE%' = '{setting}'" in caplog.messages


def test_without_the_setting_devhost_refuses_to_start_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECONCILE_SCHEDULE", raising=False)
    with pytest.raises(ScheduleError) as error:
        asyncio.run(started(tmp_path))
    assert str(error.value) == (f"timer function {NAME}: schedule refers to app setting "
                                "'RECONCILE_SCHEDULE', which is not set")


def test_the_samples_run_it_every_five_minutes() -> None:
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    assert sample["RECONCILE_SCHEDULE"] == RECONCILE_SCHEDULE == DEFAULT_SCHEDULE \
        == "0 */5 * * * *"


def test_a_post_to_the_admin_api_runs_the_reconciler_now(
        tmp_path: Path, registry: LocalRegistry, tls_files: TlsFiles, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch) -> None:
    repository = "admin-run-" + uuid.uuid4().hex[:8]
    layout = build_image(tmp_path / "img", layer_sizes=[100], seed=repository, tag="v1.0.0")
    push(layout, registry, repository, "v1.0.0")
    (tmp_path / "policy.yaml").write_text(f"""\
version: 1
registries:
  local: {{url: "{registry.endpoint}", auth: anonymous, caBundle: "{tls_files.ca}"}}
services:
  adminrun:
    registry: local
    repository: {repository}
    tags: {{semver: ">=1.0.0"}}
    environments:
      - name: qa
        target:
          cluster: {{name: adminrun-qa, kubeconfigSecret: qa-kubeconfig}}
          namespace: adminrun
          deployment: adminrun
          container: app
""")
    prefix = "a" + uuid.uuid4().hex[:10]
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", prefix)
    monkeypatch.setenv("RELEASE_POLICY_FILE", str(tmp_path / "policy.yaml"))
    monkeypatch.setenv("RECONCILE_SCHEDULE", "0 0 0 1 1 *")  # once a year: only when asked
    ledger = Ledger.from_connection_string(azurite.connection_string, prefix)

    async def main() -> tuple[int, list, datetime]:
        host = await started(tmp_path)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{host.base_url}/admin/functions/{NAME}",
                                        json={"input": ""}) as response:
                    status = response.status
            for _ in range(500):
                events = ledger.events(service="adminrun")
                if events:
                    break
                await asyncio.sleep(0.02)
            return status, events, host.clock.now()
        finally:
            await host.stop()
            await close_clients()

    status, events, now = asyncio.run(main())
    assert status == 202 and now == T0  # no time passed: the post ran it
    (baseline,) = events
    assert (baseline.tag, baseline.outcome, baseline.source) == ("v1.0.0", "ignored",
                                                                "reconciler")
    assert "baseline" in baseline.reason
