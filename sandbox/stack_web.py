"""The sample `web` service's starting point in the local stack: its first image and objects.

`web` runs on plain Deployments (no chart), so the stack makes what its releases replace:
the image `web:0.9.0` (a generated image, the same digest at every start) pushed to the
stack's registry as `web` and, as if promoted, `prod/web` (neither starts a release: the
policy's range for web is >=1.0.0, and `prod/` is a promotion target); the Deployment `web`
in QA (4 replicas, the canary's) and production (2), each running that image by digest;
and the Services `web` in QA, `web` (active) and `web-preview` in production, all selecting
`app: web`. Objects already there (a restarted stack) are left as they are. Does not write
the policy (stack_policy.py) nor drive traffic (stack_metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandbox.chart_push import ChartPushFailed
from sandbox.images import OciLayout, SkopeoError, build_image, push
from sandbox.kube.objects import ApiError
from sandbox.kube.server import KubeSimulator
from sandbox.sample_chart import manifest_digest
from sandbox.stack_policy import PROMOTION_NAMESPACE, WEB, WEB_PREVIEW, WEB_REPLICAS
from sandbox.tls import TlsFiles
from sandbox.tools import ToolMissingError

INITIAL_VERSION = "0.9.0"
LAYER_BYTES = 64 * 1024
# The Services the stack makes per namespace; the blue-green strategy adds a slot's
# pod-template-hash to production's selectors, the canary shares QA's.
SERVICES = {"qa": (WEB,), "prod": (WEB, WEB_PREVIEW)}


class WebSeedFailed(RuntimeError):
    """The initial web image could not be pushed."""


@dataclass(frozen=True)
class SeededWeb:
    """What the stack found or made for `web`: its first digest, where start pushed it and
    the objects it created."""

    digest: str
    pushed: tuple[str, ...]  # "web:0.9.0", "prod/web:0.9.0"; empty when the registry had them
    created: tuple[str, ...]  # "qa/deployment/web", …; empty when all were there

    def line(self) -> str:
        """What happened, in one line."""
        pushed = (f"pushed {' and '.join(self.pushed)} ({self.digest[:19]}…)" if self.pushed
                  else "")
        created = f"created {', '.join(self.created)}" if self.created else \
            "its Deployments and Services are kept as they are"
        return f"{WEB}: {'; '.join(filter(None, (pushed, created)))}"


def initial_image(images_dir: Path) -> OciLayout:
    """The generated `web:0.9.0` image (deterministic: the same digest each time)."""
    return build_image(images_dir / f"{WEB}-{INITIAL_VERSION}", layer_sizes=[LAYER_BYTES],
                       seed=f"{WEB}:{INITIAL_VERSION}", tag=INITIAL_VERSION)


def seed_web(kube: KubeSimulator, registry_host: str, ca: Path, images_dir: Path) -> SeededWeb:
    """Push the initial image where missing, then create the missing Deployments and
    Services; WebSeedFailed when a push fails."""
    layout = initial_image(images_dir)
    tls = TlsFiles(cert=ca, key=ca, ca=ca)
    pushed = []
    for repository in (WEB, f"{PROMOTION_NAMESPACE}{WEB}"):
        try:
            if manifest_digest(registry_host, ca, repository, INITIAL_VERSION) != layout.digest:
                push(layout, registry_host, repository, INITIAL_VERSION, tls=tls)
                pushed.append(f"{repository}:{INITIAL_VERSION}")
        except (ChartPushFailed, SkopeoError, ToolMissingError) as error:
            raise WebSeedFailed(f"{repository}:{INITIAL_VERSION}: {error}") from None
    created = []
    for namespace, replicas in WEB_REPLICAS.items():
        if not _exists(kube, "deployments", namespace, WEB):
            prefix = PROMOTION_NAMESPACE if namespace == "prod" else ""
            kube.create_deployment(namespace, WEB, f"{registry_host}/{prefix}{WEB}@"
                                   f"{layout.digest}", replicas=replicas)
            created.append(f"{namespace}/deployment/{WEB}")
        for service in SERVICES[namespace]:
            if not _exists(kube, "services", namespace, service):
                kube.create_service(namespace, service, {"app": WEB})
                created.append(f"{namespace}/service/{service}")
    return SeededWeb(layout.digest, tuple(pushed), tuple(created))


def _exists(kube: KubeSimulator, resource: str, namespace: str, name: str) -> bool:
    try:
        kube.get(resource, namespace, name)
    except ApiError as error:
        if error.code == 404:
            return False
        raise
    return True
