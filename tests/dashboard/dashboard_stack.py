"""The app in a devhost subprocess on real parts, for the dashboard, CLI and browser tests.

Azurite holds the ledger, the session's docker-registry (TLS) the images, a Kubernetes API
simulator (frozen clock, instant rollouts) runs QA and production. A release starts the way
production starts one: an image pushed with skopeo, then its push event posted to the
webhook; it deploys to QA and waits at production's approval gate. Earlier history (a
release in production, one rolled back) is written to the ledger as the orchestration
writes it. Everything is synchronous, so a test may drive a browser or run the CLI.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from devhost.testing import REPO, DevhostProcess
from sandbox.azurite import Azurite
from sandbox.images import build_image, push
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import GATE_WITH_REMINDERS, SERVICE, qa_then_prod
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.ledger import Ledger, ReleaseRecord, StageState

TOKEN = "dashboard-webhook-token"
SIGNING_KEY = "dashboard-approval-signing-key-" + "k" * 32
OLD_IMAGE = "sandbox.example/delivery@sha256:" + "0" * 64
V1_DIGEST = "sha256:" + hashlib.sha256(b"delivery v1.0.0").hexdigest()
V2_DIGEST = "sha256:" + hashlib.sha256(b"delivery v1.0.1").hexdigest()
V1 = f"{SERVICE}-{V1_DIGEST[7:23]}"
V2 = f"{SERVICE}-{V2_DIGEST[7:23]}"


def policy(registry: LocalRegistry, tls: TlsFiles, repository: str) -> str:
    """QA, then production behind Ann's gate (3-day deadline, daily reminders)."""
    return qa_then_prod(registry.endpoint, tls.ca, repository, gate=GATE_WITH_REMINDERS,
                        rollout_timeout="2m")


class DashboardStack:
    """HTTP to the app and its Durable management API, the ledger, the registry, the cluster."""

    def __init__(self, app: DevhostProcess, ledger: Ledger, registry: LocalRegistry,
                 kube: KubeSimulator, repository: str, tmp_path: Path) -> None:
        self.app, self.ledger, self.registry, self.kube = app, ledger, registry, kube
        self.repository, self.tmp_path = repository, tmp_path
        self.http = requests.Session()
        self.events = 0

    @property
    def url(self) -> str:
        return self.app.url

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url + path, timeout=30, **kwargs)

    def push(self, tag: str) -> tuple[str, str]:
        """Push an image, deliver its push event; (release id, digest)."""
        layout = build_image(self.tmp_path / "images" / tag, layer_sizes=[1024],
                             seed=f"{self.repository}-{tag}", tag=tag)
        digest = push(layout, self.registry, self.repository, tag)
        self.events += 1
        event = {"id": f"push-{self.events}-{tag}", "timestamp": "2027-01-15T08:00:00Z",
                 "action": "push", "request": {"host": self.registry.host},
                 "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": digest, "repository": self.repository, "tag": tag}}
        answer = self.http.post(self.url + "/api/registry/events", json=event, timeout=30,
                                headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 202, answer.text
        (outcome,) = answer.json()["events"]
        return outcome["releaseId"], digest

    def waiting_release(self, tag: str) -> tuple[str, str]:
        """Push `tag` and wait until it has passed QA and waits at production's gate."""
        release_id, digest = self.push(tag)
        self.until(release_id, lambda s: (s.get("customStatus") or {}).get("step")
                   == "approval")
        self.until_ledger(release_id, lambda row: row.state == "WaitingForApproval")
        return release_id, digest

    def until(self, instance_id: str, predicate: Callable[[dict], bool],
              seconds: float = 60) -> dict[str, Any]:
        """Poll the Durable status until `predicate` holds (AssertionError after `seconds`)."""
        return self.app.until(instance_id, predicate, timeout=seconds)

    def until_ledger(self, release_id: str, predicate: Callable[[ReleaseRecord], bool],
                     seconds: float = 30) -> ReleaseRecord:
        row = None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            row = self.ledger.get_release(release_id, service=SERVICE)
            if row is not None and predicate(row):
                return row
            time.sleep(0.05)
        raise AssertionError(f"{release_id}: ledger row not as expected; last {row}")

    def seed_history(self, now: datetime | None = None) -> None:
        """v1.0.0 deployed and verified in QA and production; v1.0.1 rolled back in production."""
        now = now or datetime.now(UTC)
        v1_start, v2_start = now - timedelta(hours=3), now - timedelta(hours=1)

        def healthy(start: datetime, minutes: int) -> StageState:
            return StageState("Healthy", start, start + timedelta(minutes=minutes))

        self.ledger.upsert_release(ReleaseRecord(
            V1, SERVICE, "v1.0.0", V1_DIGEST, "Completed", v1_start,
            v1_start + timedelta(minutes=20), step="Completed",
            stages={"qa": healthy(v1_start, 2), "prod": healthy(v1_start + timedelta(
                minutes=15), 5)}))
        self.ledger.upsert_release(ReleaseRecord(
            V2, SERVICE, "v1.0.1", V2_DIGEST, "RolledBack", v2_start,
            v2_start + timedelta(minutes=9), environment="prod", step="RolledBack",
            reason="prod: rollout failed: container app crashed (CrashLoopBackOff)",
            stages={"qa": healthy(v2_start, 2), "prod": StageState(
                "RolledBack", v2_start + timedelta(minutes=6), v2_start + timedelta(minutes=9),
                "rollout failed; restored v1.0.0")}))
        for environment, repository in (("qa", self.repository),
                                        ("prod", f"prod/{self.repository}")):
            image = f"{self.registry.host}/{repository}@{V1_DIGEST}"
            self.ledger.set_current(SERVICE, environment, V1, V1_DIGEST, image,
                                    at=v1_start + timedelta(minutes=2))
            self.ledger.mark_good(SERVICE, environment, V1, V1_DIGEST, image,
                                  at=v1_start + timedelta(minutes=4))


@contextmanager
def dashboard_stack(tmp_path: Path, registry: LocalRegistry, tls: TlsFiles, azurite: Azurite,
                    kube: KubeSimulator, policy_text: str | None = None,
                    settings: dict[str, str] | None = None) -> Iterator[DashboardStack]:
    """Serve the app on a fresh ledger prefix and repository until the block ends."""
    repository = "dash-" + uuid.uuid4().hex[:10]
    prefix = "d" + uuid.uuid4().hex[:10]
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy(registry, tls, repository) if policy_text is None
                           else policy_text)
    kube.create_deployment("qa", "delivery", OLD_IMAGE)
    kube.create_deployment("prod", "delivery", OLD_IMAGE)
    app = DevhostProcess(REPO, tmp_path / "devhost", tmp_path / "devhost.log")
    app.settings = {
        "AzureWebJobsStorage": azurite.connection_string, "LEDGER_TABLE_PREFIX": prefix,
        "RELEASE_POLICY_FILE": str(policy_file), "REGISTRY_WEBHOOK_TOKEN": TOKEN,
        "APPROVAL_SIGNING_KEY": SIGNING_KEY, "APPROVAL_BASE_URL": app.url,
        "APPROVAL_IDENTITY": "token",
        "SECRETS__QA__KUBECONFIG": kube.kubeconfig(ADMIN_TOKEN),
        "SECRETS__PROD__KUBECONFIG": kube.kubeconfig(ADMIN_TOKEN), **(settings or {})}
    ledger = Ledger.from_connection_string(azurite.connection_string, prefix)
    app.start(timeout=60)
    stack = DashboardStack(app, ledger, registry, kube, repository, tmp_path)
    try:
        yield stack
    finally:
        stack.http.close()
        app.stop()
