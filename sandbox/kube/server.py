"""A protocol-level Kubernetes API server for tests: real paths, real JSON, simulated controllers.

`KubeSimulator` runs aiohttp on its own asyncio loop in a background thread (like
`sandbox.faults.FaultProxy`), so synchronous tests and the synchronous `kubernetes` client can
use it. It serves what a release tool needs to roll out an image: Deployments, their
ReplicaSets and Pods, bearer-token auth per namespace, TLS with a throwaway CA, and a kubeconfig
to reach it. Test helpers create Deployments, make images fail, inject conflicts and move time.
Not a conformance target: see sandbox/kube/README.md for what is left out.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping

import yaml
from aiohttp import web

from sandbox.kube.api import KubeApi, Request
from sandbox.kube.controller import Behaviour, DeploymentController
from sandbox.kube.objects import ApiError, JsonDict
from sandbox.kube.store import Store
from sandbox.threaded import ThreadedServer
from sandbox.tls import TlsFiles

RESOURCES = ("deployments", "replicasets", "pods")
log = logging.getLogger(__name__)


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
    ) -> None:
        """`tokens` maps bearer tokens to the namespaces they may touch (None: all; no map: no
        auth). `clock` gives seconds since the epoch; `advance()` moves the simulator past it."""
        super().__init__()
        self.port = port
        self.tls = tls
        self._clock = clock
        self._skew = 0.0
        self._lock = threading.RLock()
        self._store = Store()
        self._controller = DeploymentController(self._store, rollout_seconds)
        self._api = KubeApi(self._store, self._controller, tokens, lambda: self.host)
        self._requests: list[tuple[str, str]] = []

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

    def set_image_behaviour(self, image_or_digest_substring: str, behaviour: Behaviour) -> None:
        """Make containers whose image contains the substring crash, fail to pull, never get
        ready or (again) run fine; the latest matching rule wins."""
        with self._lock:
            self._controller.set_behaviour(image_or_digest_substring, behaviour, self.now())

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
            return self.get("deployments", namespace, name)

    def get(self, resource: str, namespace: str, name: str) -> JsonDict:
        """An object as the API would return it now (`resource`: deployments, replicasets,
        pods); raises ApiError 404 when missing."""
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

    # --- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        api_request = Request(request.method, request.path, request.query, request.headers, body)
        with self._lock:
            self._requests.append((request.method, request.path))
            try:
                status, payload = self._api.handle(api_request, self.now())
            except Exception as error:  # a simulator bug: answer like an apiserver would
                log.exception("kube simulator failed on %s %s", request.method, request.path)
                failure = ApiError(500, "InternalError", f"sandbox simulator error: {error!r}")
                status, payload = 500, failure.status()
        if isinstance(payload, str):
            return web.Response(status=status, text=payload, content_type="text/plain")
        return web.Response(status=status, text=json.dumps(payload),
                            content_type="application/json")


def _resource(name: str) -> str:
    if name not in RESOURCES:
        raise ValueError(f"unknown resource {name!r}: use one of {RESOURCES}")
    return name

