"""The whole product on one machine: the parts `make run`, `make demo` and tests start.

`Stack(data_dir).start()` (or `with Stack(...) as stack:`) starts, on loopback ports that are
free or configured: Azurite, a throwaway TLS certificate, the Kubernetes API simulator with
`qa` and `prod` namespaces (its ready pods served by stand-ins on loopback), a local Prometheus
scraping those stand-ins (its targets kept in step by stack_metrics.py, which also drives a
little traffic through each Service an analysis measures), the Teams sink (cards printed), the
OCI registry (its push notifications go to the app's webhook with the webhook token), the
sample `delivery` chart pushed to it (`helm/delivery` at the chart's own version, unless there)
and the app in a devhost subprocess with a generated policy and local secrets. The policy
makes QA and production Helm releases of the chart: Helm installs the `delivery` Deployments
(and Services) with the first release; the stack creates none. The second sample service,
`web`, runs on plain Deployments the stack makes, with its first image (stack_web.py).
`stop()` stops them all, newest first. Everything lives under one data directory (0700;
files holding a secret 0600): ports are kept for the next start, Prometheus's data is in
`prometheus/`, the simulator keeps every object (Helm's release records too) in
`kube/objects.json`, and `stack.json` says how to reach a running stack (no secrets) until
it stops. `find_stack(data_dir)` reads it for other commands. Does not print or parse
command lines: see run.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from releasectl.local_stack import alive
from sandbox.azurite import Azurite
from sandbox.chart_push import ChartPushFailed
from sandbox.kube.server import KubeSimulator
from sandbox.prometheus import LocalPrometheus
from sandbox.registry import LocalRegistry
from sandbox.sample_chart import PublishedChart, own_version, publish_chart
from sandbox.stack_control import StackControl
from sandbox.stack_metrics import StandinFollower
from sandbox.stack_policy import (
    CHART_REPOSITORY,
    CONTROL_TOKEN_FILE,
    ENVIRONMENTS,
    SERVICE,
    SERVICES,
    TRAFFIC,
    WEB,
    WEBHOOK_TOKEN_FILE,
    Wiring,
    app_settings,
    local_policy,
    stored_secret,
)
from sandbox.stack_web import SeededWeb, WebSeedFailed, seed_web
from sandbox.teams_sink import TeamsSink
from sandbox.tls import make_throwaway_cert
from sandbox.tools import Managed, free_port, log_tail, private_dir, private_log, stop_process

REPO = Path(__file__).resolve().parent.parent
FACTS_FILE = "stack.json"
PORTS_FILE = "ports.json"
MARKER_FILE = ".sandbox-stack"
# Where stacks before Helm kept their Deployments' images; the simulator keeps everything now.
LEGACY_KUBE_STATE_FILE = "kube/deployments.json"
HELM_OWNER = "meta.helm.sh/release-name"  # the annotation Helm sets on objects it owns
DEVHOST_START_TIMEOUT = 120.0
DEVHOST_STOP_GRACE = 15.0
ROLLOUT_SECONDS = 2.0
# What older `make run` versions left in a data directory: wiping it is safe too.
KNOWN_ENTRIES = {"azurite", "devhost", "webhook-token"}
# Folders of the data directory that hold secrets (0700, like the data directory itself).
PRIVATE_FOLDERS = ("kube", "tls", "registry", "logs", "prometheus")
PROMETHEUS_SCRAPE = "1s"  # several samples in the 10 s rate window of QA's analysis
# The port each part prefers when none is configured and the last run's is taken.
PREFERRED = {"app": 7071, "registry": 5000, "prometheus": 9090, "blob": 10000, "queue": 10001,
             "table": 10002}


class StackError(RuntimeError):
    """The stack cannot start, or no stack runs where one was expected."""


@dataclass
class Ports:
    """Configured ports: None = the last run's or the preferred one if free, else any; 0 = any."""

    app: int | None = None
    registry: int | None = None
    kube: int | None = None
    teams: int | None = None
    control: int | None = None
    prometheus: int | None = None
    blob: int | None = None
    queue: int | None = None
    table: int | None = None


@dataclass(frozen=True)
class StackFacts:
    """How to reach a running stack (the content of `stack.json`; no secret values)."""

    pid: int
    data_dir: str
    started_at: str
    app_url: str
    dashboard_url: str
    registry_url: str
    registry_host: str
    ca_file: str
    kube_url: str
    teams_url: str
    control_url: str
    azurite_ports: list[int]
    policy_file: str
    webhook_token_file: str
    control_token_file: str
    devhost_log: str
    kube_token_files: dict[str, str] = field(default_factory=dict)
    child_pids: list[int] = field(default_factory=list)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    prometheus_url: str = ""  # empty in the facts of stacks from before Prometheus

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StackFacts:
        return cls(**json.loads(text))

    def release_url(self, release_id: str) -> str:
        return f"{self.app_url}/api/releases/{release_id}"


class Stack(Managed):
    """Start and stop every part of the local product; `facts` once started."""

    def __init__(self, data_dir: Path, ports: Ports | None = None, *,
                 print_card: Callable[[str], Any] | None = None,
                 rollout_seconds: float = ROLLOUT_SECONDS, log_level: str = "info") -> None:
        self.data_dir = data_dir.resolve()
        self.log_level = log_level  # devhost's --log-level
        self.ports = ports or Ports()
        self.print_card = print_card
        self.rollout_seconds = rollout_seconds
        self.facts: StackFacts | None = None
        self._parts: list[tuple[str, Callable[[], None]]] = []
        self._azurite: Azurite | None = None
        self._kube: KubeSimulator | None = None
        self._registry: LocalRegistry | None = None
        self._prometheus: LocalPrometheus | None = None
        self._devhost: subprocess.Popen[bytes] | None = None
        self.chart: PublishedChart | None = None  # the sample chart as start found or pushed it
        self.removed: list[str] = []  # namespaces whose pre-Helm Deployment start removed
        self.web: SeededWeb | None = None  # web's first image and the objects start made

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """Start every part and wait until the app answers; a failed start stops what started."""
        ended = end_leftovers(self.data_dir)
        if ended:
            print(f"stopped {len(ended)} process(es) a killed stack of {self.data_dir} left "
                  f"running (pids {', '.join(map(str, ended))})", file=sys.stderr)
        running = running_stack(self.data_dir)
        if running is not None:
            raise StackError(f"a stack already runs from {self.data_dir} (pid {running.pid}, "
                             f"app {running.app_url}): stop it first (Ctrl-C in its terminal)")
        for folder in (self.data_dir, *(self.data_dir / name for name in PRIVATE_FOLDERS)):
            private_dir(folder)  # they hold tokens, keys or logs that could
        (self.data_dir / MARKER_FILE).touch()
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every started part, newest first; idempotent, never raises for one part."""
        if self.facts is not None:  # ours; never another stack's
            (self.data_dir / FACTS_FILE).unlink(missing_ok=True)
        while self._parts:
            name, stop = self._parts.pop()
            try:
                stop()
            except Exception as error:  # keep stopping the others
                print(f"stopping {name} failed: {error}", file=sys.stderr)
        self.facts = None
        self._azurite = self._kube = self._registry = self._devhost = None
        self._prometheus = None

    @property
    def prometheus(self) -> LocalPrometheus | None:
        """The local Prometheus scraping the stand-ins (tests query it)."""
        return self._prometheus

    @property
    def kube(self) -> KubeSimulator | None:
        """The Kubernetes simulator, in this process (tests read Deployments from it)."""
        return self._kube

    def dead_parts(self) -> list[str]:
        """Names of started parts that are no longer running (empty while all is well)."""
        return [name for name, alive in self.health().items() if not alive]

    def health(self) -> dict[str, bool]:
        return {
            "azurite": self._azurite is not None and self._azurite.running,
            "registry": self._registry is not None and self._registry.running,
            "kube": self._kube is not None,
            "prometheus": self._prometheus is not None and self._prometheus.running,
            "devhost": self._devhost is not None and self._devhost.poll() is None,
        }

    # --- the parts -----------------------------------------------------------------------

    def _start_parts(self) -> None:
        data, last = self.data_dir, self._last_ports()
        tls = make_throwaway_cert(data / "tls")  # valid a few days: made anew at each start

        blob, queue, table = (self._port(name, last, strict_zero=True)
                              for name in ("blob", "queue", "table"))
        azurite = Azurite(data / "azurite", blob, queue, table).start()
        self._azurite = azurite
        self._parts.append(("Azurite", azurite.stop))

        tokens = {environment: stored_secret(data / "kube" / f"{environment}-token", 24)
                  for environment in ENVIRONMENTS}
        kube = KubeSimulator(port=self._port("kube", last), tls=tls,
                             tokens={token: {env} for env, token in tokens.items()},
                             rollout_seconds=self.rollout_seconds,
                             data_dir=data / "kube", standins=True).start()
        self._kube = kube
        self._parts.append(("Kubernetes simulator", kube.stop))
        self.removed = remove_unmanaged_deployments(kube, tokens)
        (data / LEGACY_KUBE_STATE_FILE).unlink(missing_ok=True)

        prometheus = LocalPrometheus(data / "prometheus", self._port("prometheus", last),
                                     scrape_interval=PROMETHEUS_SCRAPE)
        follower = StandinFollower(kube, prometheus.targets_file, services=TRAFFIC).start()
        self._parts.append(("stand-in follower", follower.stop))
        prometheus.start()
        self._prometheus = prometheus
        self._parts.append(("Prometheus", prometheus.stop))

        teams = TeamsSink(port=self._port("teams", last), print_cards=True,
                          write=self.print_card).start()
        self._parts.append(("Teams sink", teams.stop))

        app_port = self._port("app", last)
        app_url = f"http://127.0.0.1:{app_port}"
        registry = LocalRegistry(
            data / "registry", tls, port=self._port("registry", last),
            notify_url=f"{app_url}/api/registry/events",
            notify_headers={"Authorization": "Bearer "
                            + stored_secret(data / WEBHOOK_TOKEN_FILE, 24)}).start()
        self._registry = registry
        self._parts.append(("registry", registry.stop))

        control = StackControl(kube, registry.host,
                               stored_secret(data / CONTROL_TOKEN_FILE, 24),
                               data / "kube" / "image-behaviours.json", self.health,
                               port=self._port("control", last), services=SERVICES)
        control.apply_saved_rules()
        control.start()
        self._parts.append(("control endpoint", control.stop))

        policy_file = data / "release-policy.yaml"
        policy_file.write_text(local_policy(registry.endpoint, tls.ca, prometheus.url))
        settings = app_settings(data, policy_file, Wiring(
            app_url=app_url, registry_url=registry.endpoint, ca_file=tls.ca,
            storage=azurite.connection_string,
            kubeconfigs={env: kube.kubeconfig(token, namespace=env)
                         for env, token in tokens.items()},
            teams_url=teams.url))
        self._start_devhost(app_port, settings)
        try:  # once the app listens: it records the chart push as not a service's image
            self.chart = publish_chart(registry.host, tls.ca, own_version())
        except ChartPushFailed as error:
            raise StackError(f"the sample chart could not be pushed: {error}") from None
        try:  # likewise: the app records web's first image as outside web's version range
            self.web = seed_web(kube, registry.host, tls.ca, data / "images")
        except WebSeedFailed as error:
            raise StackError(f"the initial {WEB} image could not be pushed: {error}") from None

        ports = {"app": app_port, "registry": registry.port, "kube": kube.port,
                 "teams": teams.port, "control": control.port, "prometheus": prometheus.port,
                 "blob": azurite.blob_port,
                 "queue": azurite.queue_port, "table": azurite.table_port}
        (data / PORTS_FILE).write_text(json.dumps(ports, indent=2))
        self.facts = StackFacts(
            pid=os.getpid(), data_dir=str(data), started_at=datetime.now(UTC).isoformat(),
            app_url=app_url, dashboard_url=f"{app_url}/api/dashboard",
            registry_url=registry.endpoint, registry_host=registry.host, ca_file=str(tls.ca),
            kube_url=kube.url, teams_url=teams.url, control_url=control.url,
            azurite_ports=list(azurite.ports), policy_file=str(policy_file),
            webhook_token_file=str(data / WEBHOOK_TOKEN_FILE),
            control_token_file=str(data / CONTROL_TOKEN_FILE),
            devhost_log=str(self._devhost_log),
            kube_token_files={env: str(data / "kube" / f"{env}-token") for env in tokens},
            child_pids=_children_naming(data),
            services={SERVICE: {"repository": SERVICE, "environments": list(ENVIRONMENTS),
                                "chartRepository": CHART_REPOSITORY},
                      WEB: {"repository": WEB, "environments": list(ENVIRONMENTS)}},
            prometheus_url=prometheus.url)
        facts_file = data / FACTS_FILE
        facts_file.write_text(self.facts.to_json())

    @property
    def _devhost_log(self) -> Path:
        return self.data_dir / "logs" / "devhost.log"

    def _start_devhost(self, port: int, settings: dict[str, str]) -> None:
        log_path = self._devhost_log
        with private_log(log_path) as log:
            offset = log.tell()
            process = subprocess.Popen(
                [sys.executable, "-m", "devhost", "start", "--app-dir", str(REPO),
                 "--port", str(port), "--data-dir", str(self.data_dir / "devhost"),
                 "--log-level", self.log_level],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **settings, "PYTHONPATH": str(REPO)},
                start_new_session=True)  # Ctrl-C reaches us only; we stop it in order
        self._devhost = process
        self._parts.append(("devhost", lambda: _stop_devhost(process)))
        deadline = time.monotonic() + DEVHOST_START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"devhost exited with code {process.returncode} while "
                                 f"starting; log tail ({log_path}):\n"
                                 f"{log_tail(log_path, offset)}")
            if http_status(f"http://127.0.0.1:{port}/api/health") == 200:
                return
            time.sleep(0.1)
        raise StackError(f"devhost did not answer /api/health within "
                         f"{DEVHOST_START_TIMEOUT:.0f} s; log tail ({log_path}):\n"
                         f"{log_tail(log_path, offset)}")

    # --- ports ---------------------------------------------------------------------------

    def _last_ports(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(
                (self.data_dir / PORTS_FILE).read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _port(self, name: str, last: dict[str, int], strict_zero: bool = False) -> int:
        """The configured port (refused when taken), else last run's or preferred, else any.

        With `strict_zero` the part picks a free port itself when given 0 (Azurite does).
        """
        configured = getattr(self.ports, name)
        if configured is not None:
            if configured and not port_free(configured):
                raise StackError(f"port {configured} ({name}) is in use: choose another, "
                                 "or 0 for any free port")
            return configured if configured or strict_zero else free_port()
        for candidate in (last.get(name), PREFERRED.get(name)):
            if candidate and port_free(candidate):
                return candidate
        return 0 if strict_zero else free_port()


def remove_unmanaged_deployments(kube: KubeSimulator, tokens: dict[str, str]) -> list[str]:
    """Delete the `delivery` Deployment a stack before Helm created in each namespace (Helm
    would refuse to install over an object it does not own); the namespaces it was in."""
    removed = []
    for environment in ENVIRONMENTS:
        found = [item["metadata"].get("annotations") or {}
                 for item in kube.objects("deployments", environment)
                 if item["metadata"]["name"] == SERVICE]
        if not found or HELM_OWNER in found[0]:
            continue
        request = urllib.request.Request(
            f"{kube.url}/apis/apps/v1/namespaces/{environment}/deployments/{SERVICE}",
            method="DELETE", headers={"Authorization": f"Bearer {tokens[environment]}"})
        context = ssl.create_default_context(cafile=str(kube.tls.ca)) if kube.tls else None
        with urllib.request.urlopen(request, timeout=10, context=context):
            removed.append(environment)
    return removed


def _stop_devhost(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    stop_process(process, DEVHOST_STOP_GRACE)


def wipe(data_dir: Path) -> None:
    """Delete a stack's data directory; refused while a stack runs there or for other folders."""
    data_dir = data_dir.resolve()
    if not data_dir.exists():
        return
    running = running_stack(data_dir)
    if running is not None:
        raise StackError(f"a stack runs from {data_dir} (pid {running.pid}): stop it before "
                         "wiping its data")
    entries = {entry.name for entry in data_dir.iterdir()}
    if MARKER_FILE not in entries and not entries <= KNOWN_ENTRIES:
        raise StackError(f"{data_dir} does not look like a stack's data directory "
                         f"(no {MARKER_FILE}): not wiping it")
    shutil.rmtree(data_dir)


def end_leftovers(data_dir: Path, grace: float = 10.0) -> list[int]:
    """Stop what a stack of `data_dir` killed without its cleanup (SIGKILL) left running.

    Only its recorded child pids whose command line still names `data_dir` are ended.
    """
    path = data_dir.resolve() / FACTS_FILE
    try:
        facts = StackFacts.from_json(path.read_text())
    except (OSError, ValueError, TypeError):
        return []
    if alive(facts.pid):
        return []
    ended = [pid for pid in facts.child_pids if facts.data_dir in _command_line(pid)]
    for pid in ended:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_command_line(pid) for pid in ended):
        time.sleep(0.1)
    for pid in ended:
        if facts.data_dir in _command_line(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return ended


def running_stack(data_dir: Path) -> StackFacts | None:
    """The facts of the stack whose process still runs from `data_dir`, else None."""
    path = data_dir.resolve() / FACTS_FILE
    try:
        facts = StackFacts.from_json(path.read_text())
    except (OSError, ValueError, TypeError):
        return None
    return facts if alive(facts.pid) else None


def find_stack(data_dir: Path) -> StackFacts:
    """The running stack of `data_dir`, answering; StackError saying how to start one."""
    data_dir = data_dir.resolve()
    facts = running_stack(data_dir)
    if facts is None:
        raise StackError(f"no stack is running from {data_dir}: start one with `make run` "
                         "(or pass the --data-dir it uses)")
    if http_status(f"{facts.app_url}/api/health") != 200:
        raise StackError(f"the stack of {data_dir} (pid {facts.pid}) does not answer at "
                         f"{facts.app_url}/api/health: is it still starting? "
                         f"See {facts.devhost_log}")
    return facts


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status `url` answers a GET with, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def port_free(port: int) -> bool:
    """Whether no live listener holds 127.0.0.1:`port`.

    The probe binds with SO_REUSEADDR, as every listener of the stack does, so sockets a
    killed run left in TIME-WAIT do not make the port look taken (SO_REUSEPORT would let two
    live listeners share it: not wanted).
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _children_naming(data_dir: Path) -> list[int]:
    """Pids of this process's children whose command line names `data_dir` (Linux /proc)."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == me and str(data_dir) in _command_line(int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def _command_line(pid: int) -> str:
    """The command line of a live (not zombie) process, else ''."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return ""
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, IndexError, UnicodeDecodeError):
        return ""
