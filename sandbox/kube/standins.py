"""Stand-in services for the simulator's ready pods: what should run, and the child that runs it.

`wanted_state` reads the store: every ready pod of a Deployment (owned by a ReplicaSet) gets a
stand-in behaving as its image was built (`DeploymentController.traffic`), every Service with a
selector gets a proxy over the ready pods it selects (by name, so round robin is stable).
`StandinProcess` runs `sandbox.kube.standin_server` as ONE child process on the simulator's
loop and exchanges that state for the ports it serves. The simulator (server.py) decides when
to look and writes each pod's address into its `STANDIN_ANNOTATION`. No HTTP served here.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.kube.controller import DeploymentController
from sandbox.kube.objects import JsonDict, matches
from sandbox.kube.store import Store

STANDIN_ANNOTATION = "sandbox.kube/standin"  # the pod's stand-in, http://127.0.0.1:PORT
REPO = Path(__file__).resolve().parents[2]
REPLY_SECONDS = 30.0
STOP_SECONDS = 5.0


class StandinError(RuntimeError):
    """The stand-ins' child process failed or is not running."""


@dataclass(frozen=True)
class Standin:
    """One ready pod's stand-in service: where it is and what the pod carries."""

    namespace: str
    pod: str
    labels: dict[str, str]
    url: str


def key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def file_sd_targets(standins: list[Standin]) -> list[JsonDict]:
    """Prometheus `file_sd_configs` entries for stand-ins: one target each, labelled with its
    namespace, pod and the pod's labels (names made Prometheus-safe: `pod-template-hash` →
    `pod_template_hash`)."""
    entries = []
    for standin in standins:
        labels = {re.sub(r"[^A-Za-z0-9_]", "_", name): value
                  for name, value in sorted(standin.labels.items())}
        labels.update(namespace=standin.namespace, pod=standin.pod)
        entries.append({"targets": [standin.url.removeprefix("http://")], "labels": labels})
    return entries


def is_ready(pod: JsonDict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def wanted_state(store: Store, controller: DeploymentController,
                 traffic: dict[str, float]) -> dict[str, Any]:
    """The child's wanted state now: pods, Services' members, traffic rates (plain JSON)."""
    pods: dict[str, JsonDict] = {}
    ready_pods: list[JsonDict] = []
    for pod in store.list("pods"):
        owners = pod["metadata"].get("ownerReferences") or []
        if not is_ready(pod) or not any(ref.get("kind") == "ReplicaSet" for ref in owners):
            continue
        ready_pods.append(pod)
        container = pod["spec"]["containers"][0]  # the app's container decides the behaviour
        statuses = pod["status"].get("containerStatuses") or [{}]
        errors, latency_ms = controller.traffic(container["image"])
        pods[key(pod["metadata"]["namespace"], pod["metadata"]["name"])] = {
            "namespace": pod["metadata"]["namespace"], "pod": pod["metadata"]["name"],
            "labels": pod["metadata"].get("labels") or {}, "image": container["image"],
            "digest": _digest(statuses[0].get("imageID", "")),
            "errors": errors, "latency_ms": latency_ms,
        }
    services: dict[str, list[str]] = {}
    for service in store.list("services"):
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            continue  # no selector: no endpoints of the simulator's making
        namespace = service["metadata"]["namespace"]
        requirements = [(k, "In", frozenset({v})) for k, v in selector.items()]
        services[key(namespace, service["metadata"]["name"])] = [
            key(namespace, pod["metadata"]["name"]) for pod in ready_pods
            if pod["metadata"]["namespace"] == namespace
            and matches(requirements, pod["metadata"].get("labels"))
        ]
    rates = {name: rps for name, rps in traffic.items() if name in services}
    return {"pods": pods, "services": services, "traffic": rates}


class StandinProcess:
    """The one child process serving every stand-in; start, exchange state, stop (asyncio)."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sandbox.kube.standin_server", cwd=REPO,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 24)

    async def exchange(self, state: dict[str, Any]) -> dict[str, Any]:
        """Send the wanted state; the child's answer: ports of pods and Services, traffic sent."""
        async with self._lock:
            process = self._process
            if process is None or process.stdin is None or process.stdout is None:
                raise StandinError("the stand-in process is not running")
            try:
                process.stdin.write(json.dumps(state).encode() + b"\n")
                await process.stdin.drain()
                line = await asyncio.wait_for(process.stdout.readline(), REPLY_SECONDS)
            except (OSError, TimeoutError) as error:
                raise StandinError(f"the stand-in process (pid {process.pid}) did not answer: "
                                   f"{error!r}") from None
            if not line:
                code = await process.wait()
                raise StandinError(f"the stand-in process (pid {process.pid}) exited with "
                                   f"{code}")
            reply: dict[str, Any] = json.loads(line)
            if "error" in reply:
                raise StandinError(f"the stand-in process refused the state: {reply['error']}")
            return reply

    async def stop(self) -> None:
        """Close its stdin (it stops serving and exits); kill it if it does not."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()


def _digest(image_id: str) -> str:
    return image_id.rpartition("@")[2] if "@" in image_id else ""
