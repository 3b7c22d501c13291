"""The app in devhost on real parts, for the releases API tests.

Azurite holds the ledger, the session's docker-registry (TLS) holds the images, the
Kubernetes API simulator (frozen clock, zero-time rollouts) runs QA and production, and
the kubeconfig comes from local secrets. Releases start the way production starts them:
an image pushed with skopeo, then the registry's push event posted to the webhook.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devhost.host import Host
from devhost.testing import instance_status, until_instance
from sandbox.azurite import Azurite
from sandbox.images import build_image, push
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import qa_then_prod
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.approvals.decisions import decision_data
from shared.ledger.store import Ledger

REPO = Path(__file__).resolve().parents[2]
TOKEN = "releases-api-webhook-token"
MGMT = "/runtime/webhooks/durabletask"
OLD_IMAGE = "sandbox.example/delivery@sha256:" + "0" * 64
CHANGE_CAUSE = "kubernetes.io/change-cause"


class Stack:
    """HTTP to the app and the Durable management API, the ledger, the registry, the cluster."""

    def __init__(self, host: Host, http: aiohttp.ClientSession, ledger: Ledger,
                 registry: LocalRegistry, kube: KubeSimulator, repository: str,
                 tmp_path: Path) -> None:
        self.host, self.http, self.ledger = host, http, ledger
        self.registry, self.kube, self.repository = registry, kube, repository
        self.tmp_path = tmp_path
        self.events = 0

    # HTTP ---------------------------------------------------------------------------------

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url(path)) as response:
            return response.status, _body(await response.text())

    async def post(self, path: str, body: Any = None, *, raw: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.http.post(self.url(path), data=data, headers=headers) as response:
            return response.status, _body(await response.text())

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.host.base_url.rstrip("/") + path

    # Releases -----------------------------------------------------------------------------

    async def push(self, tag: str) -> tuple[str, str]:
        """Push an image, deliver its push event; (release id, digest)."""
        layout = await asyncio.to_thread(build_image, self.tmp_path / "images" / tag,
                                         layer_sizes=[1024], seed=f"{self.repository}-{tag}",
                                         tag=tag)
        digest = await asyncio.to_thread(push, layout, self.registry, self.repository, tag)
        self.events += 1
        event = {"id": f"push-{self.events}-{tag}", "timestamp": "2027-01-15T08:00:00Z",
                 "action": "push", "request": {"host": self.registry.host},
                 "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": digest, "repository": self.repository, "tag": tag}}
        async with self.http.post(self.url("/api/registry/events"), json=event,
                                  headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            body = await response.json()
            assert response.status == 202, body
        (outcome,) = body["events"]
        return outcome["releaseId"], digest

    async def release(self, tag: str) -> tuple[str, str]:
        """A version all the way to production: QA, approval, promotion, production."""
        release_id, digest = await self.push(tag)
        await self.until(release_id, lambda s: (s.get("customStatus") or {}).get("step")
                         == "approval")
        status = await self.status(release_id)
        assert status is not None
        event = status["customStatus"]["waitingFor"]["event"]
        url = self.url(f"{MGMT}/instances/{release_id}/raiseEvent/{event}")
        data = decision_data(decision="approve", approver="ann@example.com",
                             identities=["ann@example.com"], nonce=uuid.uuid4().hex,
                             at=datetime.now(UTC), event_id=uuid.uuid4().hex, via="test")
        async with self.http.post(url, json=data) as r:
            assert r.status == 202, await r.text()
        done = await self.until(release_id, lambda s: s["runtimeStatus"] != "Running")
        assert done["output"]["outcome"] == "Completed", done
        return release_id, digest

    async def status(self, instance_id: str) -> dict[str, Any] | None:
        return await instance_status(self.http, self.host.base_url, instance_id)

    async def until(self, instance_id: str, predicate: Callable[[dict], bool],
                    seconds: float = 60) -> dict[str, Any]:
        return await until_instance(self.http, self.host.base_url, instance_id, predicate,
                                    seconds)

    async def finished(self, instance_id: str) -> dict[str, Any]:
        """The operation's Durable status once it ended (its ledger row is then final too)."""
        return await self.until(instance_id, lambda s: s["runtimeStatus"] not in (
            "Pending", "Running"))

    # The cluster --------------------------------------------------------------------------

    def image(self, namespace: str) -> str:
        deployment = self.kube.get("deployments", namespace, "delivery")
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    def change_cause(self, namespace: str) -> str:
        deployment = self.kube.get("deployments", namespace, "delivery")
        return deployment["metadata"]["annotations"][CHANGE_CAUSE]

    def qa_image(self, digest: str) -> str:
        return f"{self.registry.host}/{self.repository}@{digest}"

    def prod_image(self, digest: str) -> str:
        return f"{self.registry.host}/prod/{self.repository}@{digest}"


def _body(text: str) -> Any:
    return json.loads(text) if text.strip() else None


def run_scenario(tmp_path: Path, registry: LocalRegistry, tls: TlsFiles, azurite: Azurite,
                 kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch,
                 scenario: Callable[[Stack], Awaitable[None]]) -> None:
    """Configure the app for a fresh ledger and repository, serve it, run `scenario`."""
    repository = "ops-" + uuid.uuid4().hex[:10]
    prefix = "r" + uuid.uuid4().hex[:10]
    (tmp_path / "policy.yaml").write_text(qa_then_prod(registry.endpoint, tls.ca, repository,
                                                       rollout_timeout="2m"))
    for name, value in {"AzureWebJobsStorage": azurite.connection_string,
                        "LEDGER_TABLE_PREFIX": prefix,
                        "RELEASE_POLICY_FILE": str(tmp_path / "policy.yaml"),
                        "REGISTRY_WEBHOOK_TOKEN": TOKEN,
                        "APPROVAL_SIGNING_KEY": "approval-signing-key-" + "k" * 32,
                        "APPROVAL_BASE_URL": "http://approvals.test",
                        "APPROVAL_IDENTITY": "token",
                        "SECRETS__QA__KUBECONFIG": kube.kubeconfig(ADMIN_TOKEN),
                        "SECRETS__PROD__KUBECONFIG": kube.kubeconfig(ADMIN_TOKEN)}.items():
        monkeypatch.setenv(name, value)
    kube.create_deployment("qa", "delivery", OLD_IMAGE)
    kube.create_deployment("prod", "delivery", OLD_IMAGE)
    ledger = Ledger.from_connection_string(azurite.connection_string, prefix)

    async def main() -> None:
        host = Host(REPO, port=0, data_dir=tmp_path / "devhost")
        await host.start()
        try:
            async with aiohttp.ClientSession() as http:
                await scenario(Stack(host, http, ledger, registry, kube, repository,
                                     tmp_path))
        finally:
            await host.stop()

    asyncio.run(main())
