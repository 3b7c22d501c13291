"""The running stack's control endpoint: lets `python -m sandbox push --crash-in ENV` make a
version crash in one environment of the stack's Kubernetes simulator, and `--errors` /
`--latency-ms` make its stand-in services answer with errors or slowly.

The simulator decides a pod's fate from its container image (`set_image_behaviour`: a
substring of the image reference). An environment runs a digest under a reference of its
own (QA `HOST/delivery@sha256:…`, production `HOST/prod/delivery@sha256:…` after
promotion; `web`'s likewise), so a rule on that reference makes the version fail there and
nowhere else, and a rollback to another digest runs fine. Rules (service, environment,
digest, behaviour, errors, latency_ms) are kept in the data directory and applied again, to
the registry's current address, when the stack restarts. `GET /services/NAMESPACE/NAME`
gives the address of a Service's proxy (the simulator's, in this process), so other
commands can ask which pods answer through it. Plain HTTP on 127.0.0.1; changing a rule
needs the stack's control token (a file in the data directory). Does not push images: see
push.py.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.kube.controller import BEHAVIOURS, check_traffic
from sandbox.kube.objects import ApiError
from sandbox.kube.server import KubeSimulator
from sandbox.stack_policy import ENVIRONMENTS, SERVICE, image_pattern
from sandbox.threaded import ThreadedServer

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
RULES_PATH = "/image-behaviours"
SERVICE_PATH = re.compile(r"/services/([a-z0-9-]{1,63})/([a-z0-9-]{1,63})")


class StackControl(ThreadedServer):
    """`GET /health` (which parts run), `GET /services/NAMESPACE/NAME` (`{"url": …}` of the
    Service's proxy) and `POST /image-behaviours` (bearer token): a JSON object with
    optional `service` (default delivery), `environment`, `digest`, optional `behaviour`
    (default crash), `errors` (share of requests answered 500, 0 to 1) and `latency_ms`."""

    thread_name = "stack-control"

    def __init__(self, kube: KubeSimulator, registry_host: str, token: str, rules_file: Path,
                 health: Callable[[], dict[str, bool]], port: int = 0,
                 services: tuple[str, ...] = (SERVICE,)) -> None:
        super().__init__()
        self.kube, self.registry_host, self.port = kube, registry_host, port
        self.services = services
        self._token, self._rules_file, self._health = token, rules_file, health
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def apply_saved_rules(self) -> int:
        """Apply the rules kept from earlier runs to the simulator; how many there were."""
        rules = self._saved()
        for rule in rules:  # the registry's address may have changed: the pattern follows it
            pattern = image_pattern(self.registry_host, rule["environment"], rule["digest"],
                                    rule.get("service", SERVICE))
            self.kube.set_image_behaviour(pattern, rule["behaviour"], rule.get("errors", 0.0),
                                          rule.get("latency_ms", 0.0))
        return len(rules)

    def set_rule(self, environment: str, digest: str, behaviour: str, errors: float = 0.0,
                 latency_ms: float = 0.0, service: str = SERVICE) -> dict[str, Any]:
        """Make `digest` of `service` behave so in `environment` (its stand-ins answering an
        `errors` share with 500, after `latency_ms`); ValueError names the bad field."""
        if service not in self.services:
            raise ValueError(f"service {service!r} is not one of {', '.join(self.services)}")
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment {environment!r} is not one of "
                             f"{', '.join(ENVIRONMENTS)}")
        if not DIGEST.fullmatch(digest):
            raise ValueError("digest must be sha256: followed by 64 hex digits")
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour {behaviour!r} is not one of {', '.join(BEHAVIOURS)}")
        check_traffic(errors, latency_ms)
        rule: dict[str, Any] = {
            "service": service, "environment": environment, "digest": digest,
            "behaviour": behaviour, "errors": errors, "latency_ms": latency_ms,
            "pattern": image_pattern(self.registry_host, environment, digest, service)}
        with self._lock:
            rules = [r for r in self._saved() if (r.get("service", SERVICE), r["environment"],
                                                  r["digest"]) != (service, environment, digest)]
            rules.append(rule)
            self._rules_file.parent.mkdir(parents=True, exist_ok=True)
            self._rules_file.write_text(json.dumps(rules, indent=2))
            self.kube.set_image_behaviour(rule["pattern"], behaviour, errors, latency_ms)
        return rule

    def _saved(self) -> list[dict[str, Any]]:
        if not self._rules_file.exists():
            return []
        return list(json.loads(self._rules_file.read_text()))

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/health" and request.method == "GET":
            parts = self._health()
            return web.json_response({"status": "ok" if all(parts.values()) else "degraded",
                                      "parts": parts})
        if (found := SERVICE_PATH.fullmatch(request.path)) and request.method == "GET":
            return self._service_url(found[1], found[2])
        if request.path != RULES_PATH:
            return _error(404, f"no route {request.path}")
        if request.method != "POST":
            return _error(405, "POST only")
        offered = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(offered.encode(), self._token.encode()):
            return _error(401, "missing or wrong control token")
        try:
            body: Any = json.loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            rule = self.set_rule(str(body.get("environment")), str(body.get("digest")),
                                 str(body.get("behaviour", "crash")), body.get("errors", 0.0),
                                 body.get("latency_ms", 0.0), str(body.get("service", SERVICE)))
        except ValueError as bad:
            return _error(400, str(bad))
        return web.json_response(rule)

    def _service_url(self, namespace: str, name: str) -> web.Response:
        try:
            return web.json_response({"url": self.kube.service_url(namespace, name)})
        except ApiError:
            return _error(404, f"no service {namespace}/{name}")
        except ValueError as error:
            return _error(409, str(error))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
