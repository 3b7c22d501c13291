"""The app in devhost for the ingestion tests: ledger on Azurite, images in the real registry.

Each test gets its own ledger tables and its own repositories (a fresh namespace in the
session's docker-registry), so the images one test pushes never meet another's tags. The
policy's `delivery`, `burst` and `shop` live in that registry; `flaky` is reached through
the session's fault proxy, `down` at a port where nothing listens. Events name real images
pushed with `sandbox.registry_push` (the registry, not the event, is the truth).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devhost.durable.clock import VirtualClock
from devhost.host import Host
from sandbox.azurite import Azurite
from sandbox.faults import FaultProxy
from sandbox.registry import LocalRegistry
from sandbox.registry_push import RegistryPusher
from sandbox.tls import TlsFiles
from sandbox.tools import free_port
from shared.ledger.aio import close_clients
from shared.ledger.store import Ledger

REPO = Path(__file__).resolve().parents[2]
PAYLOADS = Path(__file__).parent / "payloads"
TOKEN = "webhook-test-token-7d1f"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROUTE = "/api/registry/events"
PAYLOAD_DIGEST = "sha256:" + "a" * 64  # what the payload files name, replaced by a real one
PAYLOAD_HOSTS = ("myacr.azurecr.io", "127.0.0.1:5000")
GATE = "{approvers: {users: [ann@example.com]}, deadline: 72h}"


def _qa(name: str) -> str:
    return f"""\
      - name: qa
        target:
          cluster: {{name: {name}-qa, kubeconfigSecret: qa-kubeconfig}}
          namespace: {name}
          deployment: {name}
          container: app
        gate: {GATE}
"""


def policy(ns: str, registry: str, ca: str, flaky: str, down: str) -> str:
    """Services in namespace `ns` of the registry (flaky behind the proxy, down nowhere)."""
    return f"""\
version: 1
registries:
  local: {{url: "{registry}", auth: anonymous, caBundle: "{ca}"}}
  proxied: {{url: "{flaky}", auth: anonymous, caBundle: "{ca}"}}
  gone: {{url: "{down}", auth: anonymous, caBundle: "{ca}"}}
services:
  delivery:
    registry: local
    repository: {ns}/delivery
    tags: {{pattern: '^v?\\d+\\.\\d+\\.\\d+$', allowLatest: false}}
    environments:
{_qa("delivery")}      - name: prod
        target:
          cluster: {{name: prod-cluster, kubeconfigSecret: prod-kubeconfig}}
          namespace: delivery
          deployment: delivery
          container: app
        promotion: {{namespace: prod/}}
  burst:
    registry: local
    repository: {ns}/burst
    supersede: {{waitingAtGate: false}}
    environments:
{_qa("burst")}  shop:
    registry: local
    repository: {ns}/shop
    environments:
{_qa("shop")}  flaky:
    registry: proxied
    repository: {ns}/flaky
    environments:
{_qa("flaky")}  down:
    registry: gone
    repository: {ns}/down
    environments:
{_qa("down")}"""


@dataclass
class Env:
    """One test's ledger, registry namespace and the parts behind them."""

    ledger: Ledger
    ns: str
    registry: LocalRegistry
    pusher: RegistryPusher
    proxy: FaultProxy
    down_host: str

    def repo(self, service: str) -> str:
        return f"{self.ns}/{service}"


def make_env(tmp_path: Path, azurite: Azurite, registry: LocalRegistry, tls_files: TlsFiles,
             fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Env:
    """Write the policy and set the app settings for one test (see conftest's `stack_env`)."""
    prefix = "t" + uuid.uuid4().hex[:10]
    ns = "i" + uuid.uuid4().hex[:10]
    down = f"127.0.0.1:{free_port()}"
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy(ns, registry.endpoint, str(tls_files.ca),
                                  fault_proxy.endpoint, f"https://{down}"))
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", prefix)
    monkeypatch.setenv("RELEASE_POLICY_FILE", str(policy_file))
    monkeypatch.setenv("REGISTRY_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("APPROVAL_SIGNING_KEY", "ingest-tests-signing-key-" + "k" * 32)
    monkeypatch.setenv("APPROVAL_BASE_URL", "http://approvals.test")
    return Env(Ledger.from_connection_string(azurite.connection_string, prefix), ns, registry,
               RegistryPusher.of(registry), fault_proxy, down)


class Stack:
    """The app in devhost with its ledger on Azurite, an HTTP session and the registry."""

    def __init__(self, host: Host, env: Env, http: aiohttp.ClientSession) -> None:
        self.host, self.env, self.http = host, env, http
        self.ledger = env.ledger

    async def post(self, body: bytes | str, headers: dict[str, str] | None = None,
                   method: str = "POST") -> tuple[int, Any, dict[str, str]]:
        data = body.encode() if isinstance(body, str) else body
        async with self.http.request(method, self.host.base_url + ROUTE, data=data,
                                     headers={**AUTH, **(headers or {})}) as response:
            text = await response.text()
            return (response.status, json.loads(text) if text.strip() else None,
                    dict(response.headers))

    async def status(self, instance_id: str) -> dict[str, Any] | None:
        url = f"{self.host.base_url}/runtime/webhooks/durabletask/instances/{instance_id}"
        async with self.http.get(url) as response:
            text = await response.text()
            return json.loads(text) if text else None

    async def until(self, instance_id: str, *states: str, custom: str | None = None) -> dict:
        for _ in range(300):
            status = await self.status(instance_id)
            if status and status["runtimeStatus"] in states and (
                    custom is None or (status.get("customStatus") or {}).get("step") == custom):
                return status
            await asyncio.sleep(0.02)
        raise AssertionError(f"{instance_id} never reached {states}/{custom}: {status}")

    def push(self, service: str, tag: str, label: str = "") -> str:
        """A real image pushed to the service's repository as `tag`; its digest."""
        return self.env.pusher.push_image(self.env.repo(service), tag, label)

    def acr_push(self, event_id: str, tag: str, digest: str, service: str = "delivery",
                 repository: str | None = None) -> str:
        """An ACR push webhook body from the service's registry (for its repository unless
        another is named)."""
        host = {"flaky": self.env.proxy.host, "down": self.env.down_host}.get(
            service, self.env.registry.host)
        return acr_push(event_id, tag, digest, repository or self.env.repo(service), host)

    def payload(self, name: str, digest: str = PAYLOAD_DIGEST) -> str:
        """A recorded payload file, naming this test's registry, repositories and `digest`."""
        text = (PAYLOADS / name).read_text().replace(PAYLOAD_DIGEST, digest)
        for host in PAYLOAD_HOSTS:
            text = text.replace(f'"host": "{host}"', f'"host": "{self.env.registry.host}"')
        for service in ("delivery", "shop"):
            text = text.replace(f'"repository": "{service}"',
                                f'"repository": "{self.env.repo(service)}"')
        return text

    def instances(self, prefix: str = "") -> list[dict[str, Any]]:
        engine = self.host.engine
        assert engine is not None
        return engine.query(prefix=prefix)


def acr_push(event_id: str, tag: str, digest: str, repository: str, host: str) -> str:
    return json.dumps({"id": event_id, "timestamp": "2026-11-22T04:10:12Z", "action": "push",
                       "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                  "digest": digest, "repository": repository, "tag": tag},
                       "request": {"host": host}})


def scenario(test: Callable[[Stack], Awaitable[None]]) -> Callable[..., None]:
    """Run `test` against the app in devhost (in this process) for one test's `stack_env`."""
    def run(tmp_path: Path, stack_env: Env) -> None:
        async def main() -> None:
            # Time stands still: the reconciler's timer (every 5 minutes of wall time) would
            # otherwise catch this test's images now and then and claim one of them first.
            host = Host(REPO, port=0, data_dir=tmp_path / "devhost", clock=VirtualClock())
            await host.start()
            try:
                connector = aiohttp.TCPConnector(limit=100)
                async with aiohttp.ClientSession(connector=connector) as http:
                    await test(Stack(host, stack_env, http))
            finally:
                await host.stop()
                await close_clients()

        asyncio.run(main())

    run.__name__, run.__doc__ = test.__name__, test.__doc__
    return run


async def ledger_row(s: Stack, release_id: str, state: str, service: str = "delivery") -> Any:
    """The release's ledger row once it is in `state` (the journal writes it after the step)."""
    row = None
    for _ in range(300):
        row = await asyncio.to_thread(s.ledger.get_release, release_id, service=service)
        if row is not None and row.state == state:
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"{release_id} never reached {state} in the ledger: {row}")
