"""A release end to end on real parts: registry push → webhook → QA → approval → prod/.

docker-registry (TLS) notifies the app's webhook on push; the Kubernetes API
simulator runs QA and production; Azurite holds the ledger; secrets are local
settings. v1 goes all the way; v2 crashes in production and is rolled back to v1.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devhost.host import Host
from devhost.testing import instance_status, until_instance
from sandbox.azurite import Azurite
from sandbox.images import build_image, push
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import GATE_WITH_REMINDERS, qa_then_prod
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from sandbox.tools import free_port
from shared.ledger.store import Ledger
from shared.registry.client import RegistryClient, RegistryEndpoint

REPO = Path(__file__).resolve().parents[2]
TOKEN = "e2e-webhook-token"
MGMT = "/runtime/webhooks/durabletask"


class Flow:
    def __init__(self, host: Host, http: aiohttp.ClientSession, registry: LocalRegistry,
                 kube: KubeSimulator, tmp_path: Path) -> None:
        self.host, self.http, self.registry, self.kube = host, http, registry, kube
        self.tmp_path = tmp_path

    def push(self, tag: str) -> str:
        layout = build_image(self.tmp_path / tag, layer_sizes=[2048, 4096], seed=tag, tag=tag)
        return push(layout, self.registry, "delivery", tag)

    async def status(self, instance_id: str) -> dict[str, Any] | None:
        return await instance_status(self.http, self.host.base_url, instance_id)

    async def until(self, instance_id: str, predicate: Callable[[dict], bool],
                    seconds: float = 60) -> dict[str, Any]:
        return await until_instance(self.http, self.host.base_url, instance_id, predicate,
                                    seconds)

    async def approve(self, instance_id: str) -> None:
        """Approve through ann's personal link, as a script would: JSON to the approval page."""
        status = await self.status(instance_id)
        assert status is not None
        (link,) = status["customStatus"]["waitingFor"]["approvalLinks"]
        assert link["approver"] == "ann@example.com"
        async with self.http.post(link["url"], json={"decision": "approve",
                                                     "comment": "e2e"}) as r:
            answer = await r.json()
            # 202: submitted, not yet taken (a busy machine); the release still takes it.
            assert r.status in (200, 202), answer
            assert r.status == 202 or answer["counted"] is True, answer

    def image(self, namespace: str) -> str:
        deployment = self.kube.get("deployments", namespace, "delivery")
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def waiting_for_approval(status: dict) -> bool:
    return (status.get("customStatus") or {}).get("step") == "approval"


def test_push_to_production_then_a_crashing_version_is_rolled_back(
        tmp_path: Path, tls_files: TlsFiles, azurite: Azurite, kube: KubeSimulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    registry = LocalRegistry(tmp_path / "registry", tls_files,
                             notify_url=f"http://127.0.0.1:{port}/api/registry/events",
                             notify_headers={"Authorization": f"Bearer {TOKEN}"}).start()
    (tmp_path / "policy.yaml").write_text(qa_then_prod(
        registry.endpoint, tls_files.ca, "delivery", gate=GATE_WITH_REMINDERS,
        rollout_timeout="2m"))
    prefix = "e" + uuid.uuid4().hex[:10]
    for name, value in {"AzureWebJobsStorage": azurite.connection_string,
                        "LEDGER_TABLE_PREFIX": prefix,
                        "RELEASE_POLICY_FILE": str(tmp_path / "policy.yaml"),
                        "REGISTRY_WEBHOOK_TOKEN": TOKEN,
                        "APPROVAL_SIGNING_KEY": "approval-signing-key-" + "k" * 32,
                        "APPROVAL_BASE_URL": f"http://127.0.0.1:{port}",
                        "APPROVAL_IDENTITY": "token",
                        "SECRETS__QA__KUBECONFIG": kube.kubeconfig(ADMIN_TOKEN),
                        "SECRETS__PROD__KUBECONFIG": kube.kubeconfig(ADMIN_TOKEN)}.items():
        monkeypatch.setenv(name, value)
    ledger = Ledger.from_connection_string(azurite.connection_string, prefix)
    old = "sandbox.example/delivery@sha256:" + "0" * 64
    kube.create_deployment("qa", "delivery", old)
    kube.create_deployment("prod", "delivery", old)

    async def main() -> None:
        host = Host(REPO, port=port, data_dir=tmp_path / "devhost")
        await host.start()
        try:
            async with aiohttp.ClientSession() as http:
                await scenario(Flow(host, http, registry, kube, tmp_path))
        finally:
            await host.stop()

    async def scenario(flow: Flow) -> None:
        v1 = flow.push("v1.0.0")  # the registry's notification calls the webhook
        release_v1 = f"delivery-{v1[7:23]}"
        status = await flow.until(release_v1, waiting_for_approval)
        assert status["customStatus"]["environment"] == "prod"
        assert flow.image("qa") == f"{registry.host}/delivery@{v1}"
        assert flow.image("prod") == old
        await flow.approve(release_v1)
        done = await flow.until(release_v1, lambda s: s["runtimeStatus"] != "Running")
        assert done["runtimeStatus"] == "Completed", done
        assert done["output"]["outcome"] == "Completed"
        registry_client = RegistryClient(RegistryEndpoint(registry.endpoint, "anonymous",
                                                          str(tls_files.ca)))
        assert registry_client.manifest_digest("prod/delivery", "v1.0.0") == v1
        assert flow.image("prod") == f"{registry.host}/prod/delivery@{v1}"
        prod_state = ledger.environment_state("delivery", "prod")
        assert prod_state.last_good is not None and prod_state.last_good.digest == v1
        assert ledger.get_release(release_v1, service="delivery").state == "Completed"

        kube.set_image_behaviour("prod/delivery@", "crash")  # v2 crashes in production only
        kube.set_image_behaviour(f"prod/delivery@{v1}", "ok")
        v2 = flow.push("v2.0.0")
        release_v2 = f"delivery-{v2[7:23]}"
        await flow.until(release_v2, waiting_for_approval)
        assert flow.image("qa") == f"{registry.host}/delivery@{v2}"
        await flow.approve(release_v2)
        done = await flow.until(release_v2, lambda s: s["runtimeStatus"] != "Running", 90)
        assert done["output"]["outcome"] == "RolledBack", done
        assert "CrashLoopBackOff" in done["output"]["reason"]
        assert flow.image("prod") == f"{registry.host}/prod/delivery@{v1}"
        assert ledger.get_release(release_v2, service="delivery").state == "RolledBack"
        assert ledger.environment_state("delivery", "prod").last_good.digest == v1
        events = {e.tag: e.outcome for e in ledger.events(service="delivery")}
        assert events == {"v1.0.0": "started", "v2.0.0": "started"}

    try:
        asyncio.run(main())
    finally:
        registry.stop()
