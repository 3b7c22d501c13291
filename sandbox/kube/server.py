"""A protocol-level Kubernetes API server for tests: real paths, real JSON, simulated controllers.

`KubeSimulator` runs aiohttp on its own asyncio loop in a background thread (like
`sandbox.faults.FaultProxy`), so synchronous tests and the synchronous `kubernetes` client can
use it. It serves what a release tool and Helm v4 need: Deployments, their ReplicaSets and
Pods, Jobs and theirs, Secrets, ConfigMaps, Services, watches, server-side apply, bearer-token
auth per namespace, TLS with a throwaway CA, a kubeconfig to reach it, and (with `data_dir`)
every object kept across restarts. Test helpers create Deployments, make images fail, inject
conflicts, move time and read Helm's release records. With `standins=True`, every ready pod of
a Deployment is served by a real HTTP stand-in on loopback and every Service by a round-robin
proxy over its ready pods (one child process, standins.py). Not a conformance target: see
sandbox/kube/README.md for what is left out.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from sandbox.kube.api import RESOURCES as API_RESOURCES
from sandbox.kube.api import KubeApi, Request
from sandbox.kube.controller import Behaviour, DeploymentController
from sandbox.kube.jobs import JobController
from sandbox.kube.objects import ApiError, JsonDict
from sandbox.kube.standins import (
    STANDIN_ANNOTATION,
    Standin,
    StandinError,
    StandinProcess,
    key,
    wanted_state,
)
from sandbox.kube.store import Store
from sandbox.kube.watch import Watch
from sandbox.threaded import ThreadedServer
from sandbox.tls import TlsFiles

RESOURCES = ("deployments", "replicasets", "pods", "secrets", "configmaps", "services",
             "serviceaccounts", "jobs")
STATE_FILE = "objects.json"
OPENAPI_V2_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
WATCH_TICK = 0.25  # seconds between a watch's looks at time-driven changes
STANDIN_TICK = 0.25  # seconds between the stand-ins' looks at time-driven changes
STANDIN_WAIT = 30.0  # seconds a test helper waits for the stand-ins to follow the store
NO_STANDINS: JsonDict = {"pods": {}, "services": {}, "sent": {}}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HelmRelease:
    """One revision of a Helm release as its Secret records it (decoded without Helm)."""

    name: str
    revision: int
    status: str
    chart_version: str
    description: str
    chart: str = ""
    app_version: str = ""


class KubeSimulator(ThreadedServer):
    """A Kubernetes API server on 127.0.0.1 with a simulated Deployment controller."""

    thread_name = "kube-simulator"

    def __init__(
        self,
        port: int = 0,
        tls: TlsFiles | None = None,
        tokens: Mapping[str, set[str] | None] | None = None,
        rollout_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
        data_dir: Path | None = None,
        standins: bool = False,
        job_seconds: float = 2.0,
    ) -> None:
        """`tokens` maps bearer tokens to the namespaces they may touch (None: all; no map: no
        auth). `clock` gives seconds since the epoch; `advance()` moves the simulator past it.
        `data_dir`: keep every object in `<data_dir>/objects.json` (read now, written on
        change). `standins`: serve ready pods and Services on loopback (one child process).
        `job_seconds`: how long a Job's pod runs before it succeeds or fails (0: done at the
        next look)."""
        super().__init__()
        self.port = port
        self.tls = tls
        self._clock = clock
        self._skew = 0.0
        self._lock = threading.RLock()
        self._store = Store()
        self._controller = DeploymentController(self._store, rollout_seconds, job_seconds)
        self._controller.workloads.append(JobController(self._store).sync)
        self._api = KubeApi(self._store, self._controller, tokens, lambda: self.host)
        self._requests: list[tuple[str, str]] = []
        self._state = data_dir / STATE_FILE if data_dir is not None else None
        if self._state is not None and self._store.load(self._state):
            self._controller.resume(self._store.version)
        self._changed: asyncio.Event | None = None
        self._closing = False
        self._standins_wanted = standins
        self._standin_process: StandinProcess | None = None
        self._standin_task: asyncio.Task[None] | None = None
        self._standin_sync: asyncio.Lock | None = None
        self._standin_view: tuple[JsonDict, JsonDict] = ({}, NO_STANDINS)  # sent, answer
        self._traffic: dict[str, float] = {}

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """`https://127.0.0.1:PORT` (or http without TLS files)."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def kubeconfig(self, token: str | None, namespace: str | None = None) -> str:
        """Kubeconfig YAML for this server (CA inlined) with a bearer-token user."""
        cluster: JsonDict = {"server": self.url}
        if self.tls is not None:
            cluster["certificate-authority-data"] = base64.b64encode(
                self.tls.ca.read_bytes()).decode()
        context: JsonDict = {"cluster": "sandbox", "user": "sandbox-user"}
        if namespace is not None:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": cluster}],
            "users": [{"name": "sandbox-user", "user": {"token": token} if token else {}}],
            "contexts": [{"name": "sandbox", "context": context}],
            "current-context": "sandbox",
            "preferences": {},
        }
        return yaml.safe_dump(config, sort_keys=False)

    # --- time ------------------------------------------------------------------------------

    def now(self) -> float:
        """The simulator's time: the clock plus everything `advance()` added."""
        with self._lock:
            return self._clock() + self._skew

    def advance(self, seconds: float) -> None:
        """Move the simulator's time forward (rollouts progress, deadlines pass, pods restart)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._skew += seconds
        self._notify_threadsafe()
        self._follow_now()

    @property
    def rollout_seconds(self) -> float:
        """How long a rollout takes from now on (0: done right after the change)."""
        return self._controller.rollout_seconds

    @rollout_seconds.setter
    def rollout_seconds(self, seconds: float) -> None:
        with self._lock:
            self._controller.rollout_seconds = seconds

    # --- test helpers ----------------------------------------------------------------------

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request received since the last reset, in order."""
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def inject_conflicts(self, count: int) -> None:
        """Answer the next `count` Deployment updates or patches with 409 Conflict."""
        with self._lock:
            self._api.inject_conflicts(count)

    def set_image_behaviour(self, image_or_digest_substring: str, behaviour: Behaviour,
                            errors: float = 0.0, latency_ms: float = 0.0) -> None:
        """Make containers whose image contains the substring crash, fail to pull, never get
        ready, fail their test runs ("test-fail": pods that run to completion fail, long-running
        ones serve) or (again) run fine; the latest matching rule wins. Their stand-ins answer
        an `errors` share (0 to 1) of requests with 500, each after `latency_ms`."""
        with self._lock:
            self._controller.set_behaviour(image_or_digest_substring, behaviour, self.now(),
                                           errors, latency_ms)
        self._notify_threadsafe()
        self._follow_now()

    def create_deployment(
        self,
        namespace: str,
        name: str,
        image: str,
        replicas: int = 2,
        container: str = "app",
        annotations: Mapping[str, str] | None = None,
    ) -> JsonDict:
        """Create a Deployment (labels and selector `app: <name>`) as a client would; returns it
        as stored once the controller has run."""
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name},
                         "annotations": dict(annotations or {})},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": container, "image": image}]},
                },
            },
        }
        with self._lock:
            now = self.now()
            self._controller.sync(now)
            self._api.create(namespace, body, now)
            self._controller.sync(now)
            created = self.get("deployments", namespace, name)
        self._persist()
        self._notify_threadsafe()
        self._follow_now()
        return created

    def create_service(self, namespace: str, name: str,
                       selector: Mapping[str, str] | None = None) -> JsonDict:
        """Create a ClusterIP Service on port 80 selecting `selector` (`app: <name>` by
        default) as a client would; returns it as stored."""
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"selector": dict({"app": name} if selector is None else selector),
                         "ports": [{"port": 80, "targetPort": 8080}]}}
        with self._lock:
            self._api.create(namespace, body, self.now(), rt=API_RESOURCES[("", "services")])
            created = self.get("services", namespace, name)
        self._persist()
        self._notify_threadsafe()
        self._follow_now()
        return created

    def get(self, resource: str, namespace: str, name: str) -> JsonDict:
        """An object as the API would return it now (`resource`: one of `RESOURCES`); raises
        ApiError 404 when missing."""
        with self._lock:
            self._controller.sync(self.now())
            found = self._store.get(_resource(resource), namespace, name)
        if found is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        return found

    def objects(self, resource: str, namespace: str | None = None) -> list[JsonDict]:
        """Objects of `resource` now, in one namespace or all."""
        with self._lock:
            self._controller.sync(self.now())
            return self._store.list(_resource(resource), namespace)

    def helm_releases(self, namespace: str, name: str | None = None) -> list[HelmRelease]:
        """Helm's release records in `namespace` (of release `name`, or all), by name and
        revision, decoded from the `sh.helm.release.v1.*` Secrets as Helm stores them (base64
        of gzipped JSON inside the Secret's data), without Helm's code."""
        found = []
        for secret in self.objects("secrets", namespace):
            labels = secret["metadata"].get("labels") or {}
            if labels.get("owner") != "helm" or (name is not None and labels.get("name") != name):
                continue
            found.append(decode_helm_release(secret))
        return sorted(found, key=lambda r: (r.name, r.revision))

    # --- stand-in services -----------------------------------------------------------------

    def standins(self) -> list[Standin]:
        """The ready Deployment pods' stand-ins now, by namespace and pod."""
        self._on_standin_loop(self._sync_standins())
        state, reply = self._standin_view
        return [
            Standin(spec["namespace"], spec["pod"], dict(spec["labels"]),
                    f"http://127.0.0.1:{reply['pods'][name]}")
            for name, spec in sorted(state.get("pods", {}).items()) if name in reply["pods"]
        ]

    def service_url(self, namespace: str, name: str) -> str:
        """`http://127.0.0.1:PORT` of a proxy spreading requests over the ready pods the
        Service selects (in turn); it answers 503 while there are none."""
        self._on_standin_loop(self._sync_standins())
        _, reply = self._standin_view
        port = reply["services"].get(key(namespace, name))
        if port is None:
            self.get("services", namespace, name)  # 404 when missing
            raise ValueError(f"service {namespace}/{name} has no selector: nothing to proxy to")
        return f"http://127.0.0.1:{port}"

    def generate_traffic(self, namespace: str, name: str, rps: float) -> None:
        """Send `rps` GET / per second through the Service's proxy from the stand-ins' process,
        until set to 0 or the Service goes away (see `traffic_sent`)."""
        if isinstance(rps, bool) or not isinstance(rps, int | float) or not 0 <= rps <= 1000:
            raise ValueError(f"rps must be a number from 0 to 1000, not {rps!r}")
        self.service_url(namespace, name)
        with self._lock:
            if rps:
                self._traffic[key(namespace, name)] = float(rps)
            else:
                self._traffic.pop(key(namespace, name), None)
        self._on_standin_loop(self._sync_standins())

    def traffic_sent(self, namespace: str, name: str) -> dict[str, int]:
        """Answers to the generated traffic of a Service so far, by status code ("failed":
        no answer, "dropped": too many waiting)."""
        self._on_standin_loop(self._sync_standins(force=True))
        _, reply = self._standin_view
        return dict(reply.get("sent", {}).get(key(namespace, name), {}))

    @property
    def standin_pid(self) -> int | None:
        """The stand-ins' child process id while it runs."""
        process = self._standin_process
        return process.pid if process is not None else None

    def _follow_now(self) -> None:
        """With stand-ins running, bring them in step before a test helper returns."""
        if self._standin_process is not None and self._loop is not None:
            self._on_standin_loop(self._sync_standins())

    def _on_standin_loop(self, work: Coroutine[Any, Any, None]) -> None:
        loop = self._loop
        if not self._standins_wanted or loop is None or self._standin_process is None:
            work.close()
            raise StandinError("stand-ins are off: start the simulator with standins=True")
        asyncio.run_coroutine_threadsafe(work, loop).result(STANDIN_WAIT)

    async def _follow_standins(self) -> None:
        """Keep the stand-ins in step with the store: after every change and every tick."""
        while not self._closing:  # (3.11's wait_for may swallow a cancel that meets a wake-up)
            changed = self._changed
            try:
                await self._sync_standins()
            except StandinError:
                log.exception("kube simulator: stand-ins out of step")
            if changed is not None:
                try:
                    await asyncio.wait_for(changed.wait(), STANDIN_TICK)
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(STANDIN_TICK)

    async def _sync_standins(self, force: bool = False) -> None:
        """Send the child the wanted state when it changed; annotate pods with their address."""
        process, lock = self._standin_process, self._standin_sync
        if process is None or lock is None:
            raise StandinError("the stand-in process is not running")
        async with lock:
            with self._lock:
                self._controller.sync(self.now())
                state = wanted_state(self._store, self._controller, self._traffic)
            if state == self._standin_view[0] and not force:
                return
            reply = await process.exchange(state)
            self._standin_view = (state, reply)  # one assignment: other threads read it
            with self._lock:
                changed = self._annotate(reply["pods"])
        if changed:
            self._persist()
            self._notify()

    def _annotate(self, ports: Mapping[str, int]) -> bool:
        """Write each pod's stand-in address into its annotation (removed when it has none)."""
        changed = False
        for pod in self._store.list("pods"):
            metadata = pod["metadata"]
            port = ports.get(key(metadata["namespace"], metadata["name"]))
            wanted = f"http://127.0.0.1:{port}" if port else None
            annotations = dict(metadata.get("annotations") or {})
            if annotations.get(STANDIN_ANNOTATION) == wanted:
                continue
            if wanted is None:
                annotations.pop(STANDIN_ANNOTATION, None)
            else:
                annotations[STANDIN_ANNOTATION] = wanted
            if annotations:
                metadata["annotations"] = annotations
            else:
                metadata.pop("annotations", None)
            self._store.put("pods", pod)
            changed = True
        return changed

    # --- HTTP ------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self._closing = False
        self._changed = asyncio.Event()
        await super()._serve()
        if self._standins_wanted:
            self._standin_sync = asyncio.Lock()
            self._standin_view = ({}, NO_STANDINS)
            self._standin_process = StandinProcess()
            await self._standin_process.start()
            await self._sync_standins()
            self._standin_task = asyncio.create_task(self._follow_standins())

    async def _shutdown(self) -> None:
        self._closing = True  # open watches end at their next look
        self._notify()
        await asyncio.sleep(0)
        if self._standin_task is not None:
            self._standin_task.cancel()
            await asyncio.gather(self._standin_task, return_exceptions=True)
            self._standin_task = None
        if self._standin_process is not None:
            await self._standin_process.stop()
            self._standin_process = None
            self._standin_view = ({}, NO_STANDINS)
        await super()._shutdown()

    def stop(self) -> None:
        """Stop serving; with a data directory, write what changed since the last write."""
        super().stop()
        self._persist()

    def _persist(self) -> None:
        if self._state is None:
            return
        with self._lock:
            try:
                self._store.save(self._state)
            except OSError:
                log.exception("kube simulator could not write %s", self._state)

    def _notify(self) -> None:
        """Wake the watches (runs on the server's loop)."""
        changed, self._changed = self._changed, asyncio.Event()
        if changed is not None:
            changed.set()

    def _notify_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._notify)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        api_request = Request(request.method, request.path, request.query, request.headers, body)
        if request.method == "GET" and request.query.get("watch") in ("true", "1"):
            return await self._watch(request, api_request)
        with self._lock:
            self._requests.append((request.method, request.path))
            try:
                status, payload = self._api.handle(api_request, self.now())
            except Exception as error:  # a simulator bug: answer like an apiserver would
                log.exception("kube simulator failed on %s %s", request.method, request.path)
                failure = ApiError(500, "InternalError", f"sandbox simulator error: {error!r}")
                status, payload = 500, failure.status()
        if request.method != "GET":
            self._persist()
            self._notify()
            if self._standin_process is not None:  # answered once the proxies follow the write
                try:
                    await self._sync_standins()
                except StandinError:
                    log.exception("kube simulator: stand-ins out of step")
        if isinstance(payload, str):
            return web.Response(status=status, text=payload, content_type="text/plain")
        if isinstance(payload, bytes):
            return web.Response(status=status, body=payload,
                                headers={"Content-Type": OPENAPI_V2_TYPE})
        return web.Response(status=status, text=json.dumps(payload),
                            content_type="application/json")

    async def _watch(self, request: web.BaseRequest, api_request: Request
                     ) -> web.StreamResponse:
        """Stream watch events until the client goes away or its timeoutSeconds passes."""
        with self._lock:
            self._requests.append(("WATCH", request.path))
            try:
                watch: Watch = self._api.watch(api_request, self.now())
            except ApiError as error:
                return web.Response(status=error.code, text=json.dumps(error.status()),
                                    content_type="application/json")
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + watch.seconds
        try:
            while True:
                changed = self._changed
                with self._lock:
                    self._controller.sync(self.now())
                    lines = watch.poll(self._store)
                if lines:
                    await response.write(b"".join(lines))
                remaining = deadline - loop.time()
                transport = request.transport
                if (watch.closed or remaining <= 0 or self._closing or transport is None
                        or transport.is_closing()):
                    break
                if changed is not None:
                    try:
                        await asyncio.wait_for(changed.wait(), min(WATCH_TICK, remaining))
                    except TimeoutError:
                        pass
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client stopped watching
        return response


def decode_helm_release(secret: JsonDict) -> HelmRelease:
    """A Helm release Secret's record: data.release is base64 (Helm's) of gzipped JSON."""
    encoded = base64.b64decode(secret["data"]["release"])  # the API's base64 of the bytes
    raw = base64.b64decode(encoded)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    record = json.loads(raw)
    metadata = record.get("chart", {}).get("metadata", {})
    info = record.get("info", {})
    return HelmRelease(
        name=record["name"], revision=int(record["version"]), status=info.get("status", ""),
        chart_version=metadata.get("version", ""), description=info.get("description", ""),
        chart=metadata.get("name", ""), app_version=metadata.get("appVersion", ""),
    )


def _resource(name: str) -> str:
    if name not in RESOURCES:
        raise ValueError(f"unknown resource {name!r}: use one of {RESOURCES}")
    return name

