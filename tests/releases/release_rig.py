"""A release stack for tests: the real app in devhost, Azurite, the Kubernetes simulator, the
session's registry and a small HTTP server for verification checks.

`ReleaseStack` is built per test (its own repository, ledger tables, simulator, secrets and
policy file); `ReleaseStack.serve(scenario)` runs an async scenario against an in-process
devhost on a `VirtualClock`. `DevhostProcess` runs the same app as `python -m devhost start`
for the crash test. Every status a helper reads is scanned for the stack's secret values.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.data.tables import TableServiceClient

from devhost.durable.clock import VirtualClock
from devhost.host import Host
from devhost.testing import DevhostProcess
from sandbox.azurite import Azurite
from sandbox.images import build_image, push
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import APPROVER, SERVICE, qa_then_prod
from sandbox.registry import LocalRegistry
from sandbox.teams_sink import TeamsSink
from sandbox.tls import TlsFiles
from shared.approvals.decisions import decision_data
from shared.ingest.decisions import release_id
from shared.ingest.payloads import RegistryEvent
from shared.ingest.service import release_input
from shared.ledger.store import Ledger
from shared.policy.loader import parse_policy

REPO = Path(__file__).resolve().parents[2]
MGMT = "/runtime/webhooks/durabletask"
OLD_IMAGE = "sandbox.example/delivery@sha256:" + "0" * 64
T = TypeVar("T")

PROD_GATE = (f"{{approvers: {{users: [{APPROVER}]}}, deadline: 72h, reminderInterval: 24h,"
             " teamsWebhookSecret: teams-webhook}")


def fake_digest(seed: str) -> str:
    """A well-formed digest of an image that exists nowhere (the simulator pulls nothing)."""
    return "sha256:" + uuid.uuid5(uuid.NAMESPACE_URL, seed).hex * 2


def virtual_start() -> datetime:
    """Now, rounded up to just after the next 5-minute mark.

    The reconciler's timer fires every 5 minutes of the host's clock; starting just after a
    mark keeps it quiet unless a test jumps hours ahead. Never behind the wall clock, which
    the rollout watch compares its (orchestration-time) deadline with."""
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(minutes=now.minute % 5, seconds=now.second) \
        + timedelta(minutes=5, seconds=1)


class CheckServer:
    """A service's health endpoint: `answer(headers)` gives (status, JSON body)."""

    def __init__(self, answer: Callable[[dict[str, str]], tuple[int, Any]]) -> None:
        self.answer = answer
        self.calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.calls += 1
                status, body = server.answer(dict(self.headers))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/healthz"

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


class ReleaseStack:
    """One service on real parts: repository, ledger tables, clusters, secrets, policy."""

    def __init__(self, tmp_path: Path, tls: TlsFiles, registry: LocalRegistry, azurite: Azurite,
                 kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch, *,
                 deployments: bool = True) -> None:
        self.tmp_path, self.tls, self.registry, self.kube = tmp_path, tls, registry, kube
        self.registry_endpoint = registry.endpoint  # the app's way in; a fault proxy, say
        self.azurite = azurite
        self.repository = "r" + uuid.uuid4().hex[:10]
        self.prefix = "rb" + uuid.uuid4().hex[:10]
        self.ledger = Ledger.from_connection_string(azurite.connection_string, self.prefix)
        self.probe_token = "probe-" + uuid.uuid4().hex
        self.teams = TeamsSink().start()
        self.teams_url = f"{self.teams.url}/{uuid.uuid4().hex}"
        self.signing_key = "signing-" + uuid.uuid4().hex + uuid.uuid4().hex
        kubeconfig = kube.kubeconfig(ADMIN_TOKEN)
        self.secret_values = {ADMIN_TOKEN, self.probe_token, self.teams_url, self.signing_key}
        self.settings = {
            "AzureWebJobsStorage": azurite.connection_string,
            "LEDGER_TABLE_PREFIX": self.prefix,
            "RELEASE_POLICY_FILE": str(tmp_path / "policy.yaml"),
            "REGISTRY_WEBHOOK_TOKEN": "webhook-" + uuid.uuid4().hex,
            "SECRETS__QA__KUBECONFIG": kubeconfig,
            "SECRETS__PROD__KUBECONFIG": kubeconfig,
            "SECRETS__PROD__PROBE_TOKEN": self.probe_token,
            "SECRETS__PROD__TEAMS_WEBHOOK": self.teams_url,
            "APPROVAL_SIGNING_KEY": self.signing_key,
            "APPROVAL_BASE_URL": "http://approvals.test",
            "APPROVAL_IDENTITY": "token",
        }
        self.monkeypatch = monkeypatch
        for name, value in self.settings.items():
            monkeypatch.setenv(name, value)
        self.check_servers: list[CheckServer] = []
        self.policy(checks=[])
        if deployments:  # what runs before the first release (Helm installs its own)
            kube.create_deployment("qa", "delivery", OLD_IMAGE)
            kube.create_deployment("prod", "delivery", OLD_IMAGE)

    # --- set-up ----------------------------------------------------------------------------

    def policy(self, *, checks: list[str], prod_extra: str = "", qa_extra: str = "",
               registry_endpoint: str | None = None, gate: str = PROD_GATE) -> None:
        """Write the policy: qa, then a gate, a prod/ promotion and prod with `checks` URLs."""
        self.registry_endpoint = registry_endpoint or self.registry.endpoint
        check_lines = "".join(
            f"          - {{name: health, url: \"{url}\", jsonField: status, jsonEquals: ok,"
            f" headers: {{Authorization: probe-token}}, withinSeconds: 1, intervalSeconds: 0.2,"
            f" attemptTimeoutSeconds: 1}}\n"
            for url in checks)
        text = qa_then_prod(self.registry_endpoint, self.tls.ca, self.repository, gate=gate,
                            qa_extra=qa_extra,
                            prod_extra=("        checks:\n" + check_lines if checks else "")
                            + prod_extra)
        (self.tmp_path / "policy.yaml").write_text(text)
        self.service = parse_policy(text, source="policy.yaml").service(SERVICE)

    def check_server(self, answer: Callable[[dict[str, str]], tuple[int, Any]]) -> CheckServer:
        server = CheckServer(answer)
        self.check_servers.append(server)
        return server

    def push(self, tag: str) -> str:
        """Push a generated image as `<repository>:<tag>`; its digest."""
        layout = build_image(self.tmp_path / "images" / tag, layer_sizes=[512], seed=
                             f"{self.repository}/{tag}", tag=tag)
        return push(layout, self.registry, self.repository, tag)

    def push_to(self, repository: str, tag: str, seed: str) -> str:
        layout = build_image(self.tmp_path / "images" / seed, layer_sizes=[512], seed=seed,
                             tag=tag)
        return push(layout, self.registry, repository, tag)

    def release_request(self, tag: str, digest: str, received_at: datetime) -> tuple[str, str]:
        """(release id, orchestration input JSON) as ingestion builds them."""
        event = RegistryEvent(event_id=uuid.uuid4().hex, source="test", action="push",
                              registry=self.registry_host, repository=self.repository,
                              tag=tag, digest=digest)
        instance_id = release_id(SERVICE, digest)
        return instance_id, json.dumps(release_input(self.service, event, instance_id,
                                                     received_at))

    @property
    def registry_host(self) -> str:
        return self.registry_endpoint.removeprefix("https://")

    # --- looking at things -----------------------------------------------------------------

    def image(self, namespace: str) -> str:
        deployment = self.kube.get("deployments", namespace, "delivery")
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    def image_in(self, namespace: str, digest: str) -> str:
        repository = f"prod/{self.repository}" if namespace == "prod" else self.repository
        return f"{self.registry_host}/{repository}@{digest}"

    def writes(self, namespace: str) -> int:
        """Patches and updates of the namespace's Deployment the simulator received."""
        return sum(1 for method, path in self.kube.requests()
                   if method in ("PATCH", "PUT")
                   and path.startswith(f"/apis/apps/v1/namespaces/{namespace}/deployments/"))

    def ledger_rows(self) -> list[dict[str, Any]]:
        service = TableServiceClient.from_connection_string(self.azurite.connection_string)
        rows = []
        for table in self.ledger.table_names:
            try:
                rows += [dict(e) for e in service.get_table_client(table).list_entities()]
            except Exception as missing:  # a table nobody wrote to
                if "TableNotFound" not in str(missing):
                    raise
        return rows

    def assert_no_secret(self, where: str, value: Any) -> None:
        text = json.dumps(value, default=str)
        found = [text.index(secret) for secret in self.secret_values if secret in text]
        assert not found, f"a secret value in {where}: …{text[max(found[0] - 600, 0):][:900]}…"

    # --- running ---------------------------------------------------------------------------

    def serve(self, scenario: Callable[[Released], Awaitable[T]]) -> T:
        """Run `scenario` against the app in devhost on a virtual clock; stop everything."""

        async def main() -> T:
            clock = VirtualClock(virtual_start())
            host = Host(REPO, port=0, data_dir=self.tmp_path / "devhost", clock=clock)
            await host.start()
            try:
                released = Released(self, host, clock)
                result = await scenario(released)
                released.assert_no_secrets_anywhere()
                return result
            finally:
                await host.stop()

        try:
            return asyncio.run(main())
        finally:
            for server in self.check_servers:
                server.stop()
            self.teams.stop()


class Released:
    """The stack while devhost runs: start releases, decide gates, move time, look."""

    def __init__(self, stack: ReleaseStack, host: Host, clock: VirtualClock) -> None:
        self.stack, self.host, self.clock = stack, host, clock
        assert host.engine is not None
        self.engine = host.engine

    def start(self, tag: str, digest: str, pushed_by: str | None = None) -> str:
        instance_id, payload = self.stack.release_request(tag, digest, self.clock.now())
        if pushed_by:
            data = json.loads(payload)
            data["image"]["pushedBy"] = pushed_by
            payload = json.dumps(data)
        self.engine.start_new("release", instance_id, payload)
        return instance_id

    async def completed(self, tag: str, digest: str) -> str:
        """Start a release, approve it at its gate and see it complete; its id."""
        release, done = await self.through_gate(tag, digest)
        assert outcome(done) == "Completed", done
        return release

    async def through_gate(self, tag: str, digest: str,
                           seconds: float = 20) -> tuple[str, dict[str, Any]]:
        """Start a release, approve it at its gate; its id and its final status."""
        release = self.start(tag, digest)
        await self.at_gate(release)
        self.approve(release)
        return release, await self.finished(release, seconds=seconds)

    def raise_event(self, instance_id: str, name: str, data: Any) -> None:
        self.engine.raise_event(instance_id, name, json.dumps(data))

    def approve(self, instance_id: str, approved: bool = True, by: str = APPROVER,
                comment: str | None = None, nonce: str | None = None) -> dict[str, Any]:
        """Decide the gate the release waits at, as the approval page would; the event data."""
        waiting = self.status(instance_id)["customStatus"]["waitingFor"] or {}
        data = decision(by, approved, comment, nonce)
        self.raise_event(instance_id, waiting.get("event") or "approval:prod:1", data)
        return data

    def status(self, instance_id: str) -> dict[str, Any]:
        status = self.engine.status(instance_id)
        assert status is not None, f"no instance {instance_id}"
        self.stack.assert_no_secret(f"status of {instance_id}", status)
        return status

    async def until(self, instance_id: str, predicate: Callable[[dict[str, Any]], bool], *,
                    step: float = 0.5, seconds: float = 20) -> dict[str, Any]:
        """Poll the status until `predicate`; between polls move the clock `step` seconds so
        retry timers (5 s and up) fire. `step=0` leaves time alone."""
        deadline = time.monotonic() + seconds
        while True:
            status = self.status(instance_id)
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"{instance_id}: condition not met in {seconds} s; "
                                     f"status {json.dumps(status, indent=1)[:3000]}")
            await asyncio.sleep(0.02)
            if step:
                self.clock.advance(step)

    async def finished(self, instance_id: str, **options: Any) -> dict[str, Any]:
        return await self.until(instance_id, lambda s: s["runtimeStatus"] not in
                                ("Pending", "Running"), **options)

    async def at_gate(self, instance_id: str, **options: Any) -> dict[str, Any]:
        status = await self.until(instance_id, waiting_at_gate, **options)
        await asyncio.sleep(0.05)  # the episode's record_release may still be in flight
        return status

    async def advance_to(self, moment: datetime) -> None:
        """Set the clock and give the engine a moment to run what became due."""
        self.clock.set(moment)
        await asyncio.sleep(0.1)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        status = self.engine.status(instance_id, show_history=True, show_history_output=True)
        assert status is not None
        return status["historyEvents"]

    def failed_tasks(self, instance_id: str) -> list[str]:
        """Reasons of the failed activity attempts of an instance (retries included)."""
        return [e.get("Reason", "") for e in self.history(instance_id)
                if e["EventType"] == "TaskFailed"]

    def assert_no_secrets_anywhere(self) -> None:
        """No secret value in any instance's status, input, output or history, nor the ledger."""
        for instance in self.engine.query(show_input=True):
            where = instance["instanceId"]
            self.stack.assert_no_secret(f"status of {where}", instance)
            self.stack.assert_no_secret(f"history of {where}", self.history(where))
        self.stack.assert_no_secret("the ledger", self.stack.ledger_rows())


def decision(by: str = APPROVER, approved: bool = True, comment: str | None = None,
             nonce: str | None = None) -> dict[str, Any]:
    """A decision event's data for `by`, with a fresh link nonce unless one is given."""
    return decision_data(decision="approve" if approved else "reject", approver=by,
                         identities=[by], nonce=nonce or uuid.uuid4().hex,
                         at=datetime.now(UTC), event_id=uuid.uuid4().hex, via="test",
                         comment=comment)


def waiting_at_gate(status: dict[str, Any]) -> bool:
    return ((status.get("customStatus") or {}).get("waitingFor") or {}).get("kind") == "approval"


def outcome(status: dict[str, Any]) -> str | None:
    return (status.get("output") or {}).get("outcome")


def devhost_process(data_dir: Path, log_path: Path, settings: dict[str, str]
                    ) -> DevhostProcess:
    """This app in `python -m devhost start`, with the stack's settings."""
    return DevhostProcess(REPO, data_dir, log_path, settings)

