"""The stand-in services' child process: one asyncio loop serving one loopback port per ready pod.

Run by `sandbox.kube.standins.StandinProcess` as `python -m sandbox.kube.standin_server`. It
reads the wanted state as one JSON line on stdin (pods with their image and traffic behaviour,
Services with the pods their selector picks, traffic rates) and answers one JSON line on stdout
with the ports it serves. A pod's stand-in answers `/healthz`, `/version` and Prometheus
`/metrics` at once; every other path is the app's traffic: delayed by `latency_ms`, answered
500 for an `errors` share of requests (spread evenly, not at random) and counted. A Service's
proxy forwards to its pods' stand-ins in turn. Ends when stdin closes. Not a web framework.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBES = ("/healthz", "/version", "/metrics")
MAX_IN_FLIGHT = 200  # generated requests waiting for an answer, per Service
SHUTDOWN_SECONDS = 0.5
log = logging.getLogger("sandbox.kube.standin_server")


@dataclass
class PodSpec:
    """What a pod's stand-in serves: who it is, what it runs, how it behaves."""

    namespace: str
    pod: str
    image: str
    digest: str
    errors: float = 0.0
    latency_ms: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PodSpec:
        return cls(str(data["namespace"]), str(data["pod"]), str(data["image"]),
                   str(data.get("digest", "")), float(data.get("errors", 0.0)),
                   float(data.get("latency_ms", 0.0)))


@dataclass
class Metrics:
    """Request counts by status code and a latency histogram, in Prometheus' text format."""

    codes: Counter[int] = field(default_factory=lambda: Counter({200: 0, 500: 0}))
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    seconds: float = 0.0
    count: int = 0

    def record(self, code: int, seconds: float) -> None:
        self.codes[code] += 1
        self.seconds += seconds
        self.count += 1
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1

    def text(self, spec: PodSpec) -> str:
        info = (f'namespace="{_label(spec.namespace)}",pod="{_label(spec.pod)}",'
                f'image="{_label(spec.image)}",digest="{_label(spec.digest)}"')
        lines = [
            "# HELP standin_info The pod this stand-in serves and the image it runs.",
            "# TYPE standin_info gauge",
            f"standin_info{{{info}}} 1",
            "# HELP http_requests_total Requests answered, by status code.",
            "# TYPE http_requests_total counter",
            *(f'http_requests_total{{code="{code}"}} {n}'
              for code, n in sorted(self.codes.items())),
            "# HELP http_request_duration_seconds Time taken to answer a request.",
            "# TYPE http_request_duration_seconds histogram",
            *(f'http_request_duration_seconds_bucket{{le="{bound}"}} {n}'
              for bound, n in zip(BUCKETS, self.buckets, strict=True)),
            f'http_request_duration_seconds_bucket{{le="+Inf"}} {self.count}',
            f"http_request_duration_seconds_sum {self.seconds:.6f}",
            f"http_request_duration_seconds_count {self.count}",
        ]
        return "\n".join(lines) + "\n"


class Loopback:
    """A low-level aiohttp server on a free 127.0.0.1 port answering with `handle`."""

    def __init__(self, handle: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
                 ) -> None:
        self._runner = web.ServerRunner(web.Server(handle), handle_signals=False,
                                        shutdown_timeout=SHUTDOWN_SECONDS)
        self.port = 0

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()


class Standin(Loopback):
    """One pod's HTTP service on its own loopback port."""

    def __init__(self, spec: PodSpec) -> None:
        super().__init__(self._handle)
        self.spec = spec
        self.metrics = Metrics()
        self._owed = 0.0  # errors accumulate; each whole one is answered 500

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        spec = self.spec
        if request.path == "/healthz":
            return web.Response(text="ok\n")
        if request.path == "/version":
            return web.json_response({"namespace": spec.namespace, "pod": spec.pod,
                                      "image": spec.image, "digest": spec.digest,
                                      "tag": _tag(spec.image)})
        if request.path == "/metrics":
            return web.Response(text=self.metrics.text(spec),
                                content_type="text/plain", charset="utf-8")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await request.read()
        if spec.latency_ms > 0:
            await asyncio.sleep(spec.latency_ms / 1000)
        self._owed += spec.errors
        code = 200
        if self._owed >= 1 - 1e-9:
            self._owed -= 1
            code = 500
        self.metrics.record(code, loop.time() - started)
        return web.json_response({"pod": spec.pod, "namespace": spec.namespace,
                                  "image": spec.image, "code": code}, status=code,
                                 headers={"X-Pod": spec.pod})


class ServiceProxy(Loopback):
    """A Service's address: forwards each request to the next of its pods' stand-ins."""

    def __init__(self, name: str, session: aiohttp.ClientSession) -> None:
        super().__init__(self._handle)
        self.name = name
        self.backends: list[int] = []
        self._session = session
        self._turn = 0

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        backends = self.backends
        if not backends:
            return web.Response(status=503, text=f"service {self.name} has no ready endpoints\n")
        port = backends[self._turn % len(backends)]
        self._turn += 1
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "accept", "authorization")}
        try:
            async with self._session.request(request.method, f"http://127.0.0.1:{port}"
                                             f"{request.path_qs}", data=body or None,
                                             headers=headers) as answer:
                payload = await answer.read()
                kept = {k: v for k, v in answer.headers.items()
                        if k.lower() in ("content-type", "x-pod")}
                return web.Response(status=answer.status, body=payload, headers=kept)
        except aiohttp.ClientError as error:
            return web.Response(status=502, text=f"service {self.name}: endpoint 127.0.0.1:"
                                                 f"{port} failed: {error}\n")


class Traffic:
    """Requests at a steady rate to one Service's proxy, counted by answer."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.rps = 0.0
        self.port = 0
        self.sent: Counter[str] = Counter()
        self._session = session
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def set(self, rps: float, port: int) -> None:
        self.rps, self.port = rps, port
        if rps > 0 and self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self.rps = 0.0
        if self._task is not None:
            self._task.cancel()
        for task in list(self._in_flight):
            task.cancel()
        await asyncio.gather(*([self._task] if self._task else []), *self._in_flight,
                             return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while self.rps > 0:
            if len(self._in_flight) < MAX_IN_FLIGHT:
                task = asyncio.create_task(self._one(self.port))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            else:
                self.sent["dropped"] += 1
            due = max(due + 1 / self.rps, loop.time() - 1.0)  # no burst after a stall
            await asyncio.sleep(max(0.0, due - loop.time()))
        self._task = None

    async def _one(self, port: int) -> None:
        try:
            async with self._session.get(f"http://127.0.0.1:{port}/") as answer:
                await answer.read()
                self.sent[str(answer.status)] += 1
        except aiohttp.ClientError:
            self.sent["failed"] += 1


class Standins:
    """Everything the child serves, brought to the wanted state one message at a time."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self.pods: dict[str, Standin] = {}
        self.services: dict[str, ServiceProxy] = {}
        self.traffic: dict[str, Traffic] = {}

    async def apply(self, wanted: dict[str, Any]) -> dict[str, Any]:
        pods = {key: PodSpec.from_json(value) for key, value in wanted.get("pods", {}).items()}
        for key in set(self.pods) - set(pods):
            await self.pods.pop(key).stop()
        for key, spec in pods.items():
            if key in self.pods:
                self.pods[key].spec = spec
            else:
                standin = Standin(spec)
                await standin.start()
                self.pods[key] = standin
        services: dict[str, list[str]] = wanted.get("services", {})
        for key in set(self.services) - set(services):
            await self.services.pop(key).stop()
        for key, members in services.items():
            if key not in self.services:
                proxy = ServiceProxy(key, self._session)
                await proxy.start()
                self.services[key] = proxy
            self.services[key].backends = [self.pods[m].port for m in members if m in self.pods]
        rates: dict[str, float] = wanted.get("traffic", {})
        for key in set(self.traffic) - set(rates):
            if self.traffic[key].rps:
                await self.traffic[key].stop()
        for key, rps in rates.items():
            target = self.services.get(key)
            traffic = self.traffic.setdefault(key, Traffic(self._session))
            if target is None or rps <= 0:
                await traffic.stop()
            else:
                traffic.set(float(rps), target.port)
        return {
            "pods": {key: standin.port for key, standin in self.pods.items()},
            "services": {key: proxy.port for key, proxy in self.services.items()},
            "sent": {key: dict(traffic.sent) for key, traffic in self.traffic.items()},
        }

    async def close(self) -> None:
        for traffic in self.traffic.values():
            await traffic.stop()
        for proxy in self.services.values():
            await proxy.stop()
        for standin in self.pods.values():
            await standin.stop()


async def serve() -> None:
    """Answer each state line on stdin with the ports served, until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        standins = Standins(session)
        try:
            while line := await reader.readline():
                try:
                    reply = await standins.apply(json.loads(line))
                except (ValueError, KeyError, TypeError, OSError) as error:
                    reply = {"error": f"{type(error).__name__}: {error}"}
                sys.stdout.write(json.dumps(reply) + "\n")
                sys.stdout.flush()
        finally:
            await standins.close()


def _tag(image: str) -> str:
    """The tag of an image reference (empty when it names only a digest)."""
    name = image.split("@", 1)[0]
    repository, _, tag = name.rpartition(":")
    return tag if repository and "/" not in tag else ""


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve())
