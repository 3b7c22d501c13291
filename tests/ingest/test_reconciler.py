"""The reconciler finds pushes no webhook delivered: a real registry, Azurite, devhost's timer.

It reads digests from the registry itself; ingestion then asks once more, with one GET of
the tag's manifest (is it still this image, and an image at all?)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.durable.clock import VirtualClock
from devhost.host import Host
from sandbox.azurite import Azurite
from sandbox.faults import FaultProxy
from sandbox.images import build_image, push
from sandbox.registry import LocalRegistry
from sandbox.registry_push import RegistryPusher
from sandbox.tls import TlsFiles
from shared.ledger.aio import close_clients
from shared.ledger.store import Ledger

REPO = Path(__file__).resolve().parents[2]


def policy(registry: LocalRegistry, tls: TlsFiles) -> str:
    return f"""\
version: 1
registries:
  local: {{url: "{registry.endpoint}", auth: anonymous, caBundle: "{tls.ca}"}}
services:
  empty:
    registry: local
    repository: recon-empty
    environments:
      - name: qa
        target:
          cluster: {{name: empty-qa, kubeconfigSecret: qa-kubeconfig}}
          namespace: empty
          deployment: empty
          container: app
  recon:
    registry: local
    repository: recon-svc
    tags: {{semver: ">=1.0.0"}}
    environments:
      - name: qa
        target:
          cluster: {{name: recon-qa, kubeconfigSecret: qa-kubeconfig}}
          namespace: recon
          deployment: recon
          container: app
        gate: {{approvers: {{users: [ann@example.com]}}, deadline: 72h}}
"""


def test_baseline_then_the_newest_missed_push_starts_a_release(
        tmp_path: Path, registry: LocalRegistry, tls_files: TlsFiles, azurite: Azurite,
        monkeypatch: pytest.MonkeyPatch) -> None:
    layout = build_image(tmp_path / "img", layer_sizes=[100], seed="recon", tag="v1.0.0")
    push(layout, registry, "recon-svc", "v1.0.0")
    push(layout, registry, "recon-svc", "not-a-version")
    prefix = "r" + uuid.uuid4().hex[:10]
    (tmp_path / "policy.yaml").write_text(policy(registry, tls_files))
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", prefix)
    monkeypatch.setenv("RELEASE_POLICY_FILE", str(tmp_path / "policy.yaml"))
    ledger = Ledger.from_connection_string(azurite.connection_string, prefix)
    clock = VirtualClock()

    async def events(count: int) -> list:
        for _ in range(300):
            found = ledger.events(service="recon")
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} events, have {ledger.events(service='recon')}")

    async def main() -> None:
        host = Host(REPO, port=0, data_dir=tmp_path / "devhost", clock=clock)
        await host.start()
        try:
            assert host.timers is not None
            timer = host.timers.triggers["reconcile_registries"]
            while timer.next_occurrence is None:  # its loop has computed the first occurrence
                await asyncio.sleep(0.01)

            async def tick() -> None:
                """One run of the timer, to its end: an advance during a run would skip one."""
                due = timer.next_occurrence
                clock.advance(timedelta(minutes=5))
                while timer.next_occurrence == due:
                    await asyncio.sleep(0.01)

            await tick()
            (baseline,) = await events(1)
            assert ledger.events(service="empty") == []  # no images yet: skipped, no error
            assert baseline.tag == "v1.0.0" and baseline.outcome == "ignored"
            assert "baseline" in baseline.reason
            assert host.engine is not None and host.engine.query() == []

            for tag, seed in (("v1.1.0", "b"), ("v1.2.0", "c")):
                newer = build_image(tmp_path / tag, layer_sizes=[100], seed=seed, tag=tag)
                push(newer, registry, "recon-svc", tag)
            await tick()
            found = {e.tag: e for e in await events(3)}
            assert found["v1.2.0"].outcome == "started"
            assert found["v1.2.0"].source == "reconciler"
            assert found["v1.1.0"].outcome == "ignored"
            assert "superseded by the newer missed version v1.2.0" in found["v1.1.0"].reason
            (instance,) = host.engine.query()
            assert instance["instanceId"] == found["v1.2.0"].release_id

            await tick()
            await asyncio.sleep(0.5)
            assert len(ledger.events(service="recon")) == 3
            assert len(host.engine.query()) == 1
        finally:
            await host.stop()
            await close_clients()

    asyncio.run(main())


def test_the_reconciler_ingests_what_it_read_with_one_more_request(
        tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxy, tls_files: TlsFiles,
        azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    repository = "recon-" + uuid.uuid4().hex[:8]
    pusher = RegistryPusher.of(registry)
    pusher.push_image(repository, "v1.0.0")
    prefix = "r" + uuid.uuid4().hex[:10]
    (tmp_path / "policy.yaml").write_text(f"""\
version: 1
registries:
  proxied: {{url: "{fault_proxy.endpoint}", auth: anonymous, caBundle: "{tls_files.ca}"}}
services:
  recon:
    registry: proxied
    repository: {repository}
    environments:
      - name: qa
        target:
          cluster: {{name: recon-qa, kubeconfigSecret: qa-kubeconfig}}
          namespace: recon
          deployment: recon
          container: app
        gate: {{approvers: {{users: [ann@example.com]}}, deadline: 72h}}
""")
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", prefix)
    monkeypatch.setenv("RELEASE_POLICY_FILE", str(tmp_path / "policy.yaml"))
    ledger = Ledger.from_connection_string(azurite.connection_string, prefix)

    async def check(host: Host, tick: Callable[[], Awaitable[None]]) -> None:
        await tick()  # the baseline: v1.0.0
        missed = pusher.push_image(repository, "v1.1.0")
        fault_proxy.reset_stats()
        await tick()
        (event,) = [e for e in ledger.events(service="recon") if e.tag == "v1.1.0"]
        assert (event.outcome, event.digest, event.tag_current) == ("started", missed, True)
        # The tag list, a HEAD per tag, then ingestion's one GET of the missed manifest.
        assert fault_proxy.stats().by_method == {"GET": 2, "HEAD": 2}
        assert host.engine is not None
        (instance,) = host.engine.query()
        assert instance["instanceId"] == event.release_id

    asyncio.run(with_timer(tmp_path, check))


async def with_timer(tmp_path: Path,
                     check: Callable[[Host, Callable[[], Awaitable[None]]], Awaitable[None]]
                     ) -> None:
    """Run `check` with the app in devhost and a `tick` that runs the reconciler once."""
    clock = VirtualClock()
    host = Host(REPO, port=0, data_dir=tmp_path / "devhost", clock=clock)
    await host.start()
    try:
        assert host.timers is not None
        timer = host.timers.triggers["reconcile_registries"]
        while timer.next_occurrence is None:
            await asyncio.sleep(0.01)

        async def tick() -> None:
            due = timer.next_occurrence
            clock.advance(timedelta(minutes=5))
            while timer.next_occurrence == due:
                await asyncio.sleep(0.01)

        await check(host, tick)
    finally:
        await host.stop()
        await close_clients()
