"""The `helm` target kind: a chart released with Helm's own SDK, the deploy seam's second
implementation (shared/deploy/target.py).

- `deploy` loads the pinned chart, renders it offline with the release's values (a render
  error, a bad value or a chart that ignores the image fails here, before the cluster is
  touched), then starts `helm upgrade --install` (Helm waits for readiness until the
  rollout timeout) on a thread and returns once Helm has recorded the new revision.
- `await_ready` looks for at most `max_wait`: what Helm recorded, and meanwhile the pods of
  the chart's Deployments, so CrashLoopBackOff or ImagePullBackOff come back as soon as they
  are seen, with `settled: false` while Helm's upgrade still runs.
- `restore` is `helm rollback` to the environment's last good revision (the newest one our
  last good release made, else the revision that ran before), only once no Helm action runs.
- `verify` runs the HTTP checks and, when the policy asks, `helm test`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import helm_python

from shared.cluster.clusters import with_deployments
from shared.cluster.deployments import Deployments, DeploymentTarget
from shared.cluster.errors import ClusterUnavailable, InvalidTarget
from shared.cluster.requests import ClusterRequest
from shared.cluster.rollout import RolloutStatus
from shared.cluster.verification import run_checks
from shared.deploy.evidence import Evidence, Measurement, Verdict
from shared.failure_kinds import Permanent
from shared.policy.helm import HelmTarget, get_value, split_oci
from shared.registry.client import RegistryEndpoint
from shared.registry.registries import for_endpoint
from shared.secrets.sources import for_spec
from shared.text import one_line

from . import runs
from .access import HelmAccess, helm_access
from .charts import fetch_oci, load_archive, load_folder
from .pins import ChartError, PinnedChart
from .revisions import (
    RELEASE_ID_LABEL,
    Revision,
    deployed,
    deployments_in,
    latest,
    made_by,
    release_label,
)

APP_ROOT = Path(__file__).resolve().parents[2]  # where function_app.py and chart folders are
WAIT = "watcher"  # Helm's kstatus watcher
RECORD_WAIT_SECONDS = 10.0  # how long `deploy` waits for Helm to record the new revision
POLL_SECONDS = 0.25
LOOK_SECONDS = 1.0  # how often `await_ready` looks at the pods while Helm waits
LOG_TAIL_LINES = 20
HELM_TEST = "helmTest"  # the Evidence kind of `helm test`
T = TypeVar("T")


class HelmFailed(Permanent, RuntimeError):
    """Helm refused or failed an action; the message says which release and why."""


@dataclass(frozen=True)
class HelmReport:
    """A step's result as plain JSON (`state` when it says where a rollout stands)."""

    data: Mapping[str, Any]

    @property
    def state(self) -> str:
        return str(self.data.get("state") or "")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass(frozen=True)
class HelmChart:
    """One Helm release on one cluster namespace, reached with the environment's secrets."""

    KIND: ClassVar[str] = "helm"
    SHAPE: ClassVar[frozenset[str]] = frozenset({"kind", "release", "chart"})

    target: HelmTarget
    request: ClusterRequest
    # The newest revision as read once this object's own Helm action had returned: the first
    # look of `await_ready` right after (rollback_deployment) takes it instead of reading
    # Helm's records again (one read is ~4 ms of a ~60 ms rollback, bench/helm.py).
    _returned: list[Revision] = field(default_factory=list, init=False, compare=False,
                                      repr=False)

    @classmethod
    def open(cls, request: ClusterRequest) -> HelmChart:
        try:
            return cls(HelmTarget.from_dict(request.target), request)
        except ValueError as bad:
            raise InvalidTarget(str(bad)) from None

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def key(self) -> runs.Key:
        return (self.target.cluster, self.target.namespace, self.target.release)

    # --- the seam ----------------------------------------------------------------------------

    def snapshot(self) -> HelmReport:
        """The revision running now, and the one to roll back to (the newest revision our
        release `goodReleaseId` made, else the running one); revision 0: never installed."""
        history = self._history()
        running = deployed(history)
        good_release = self.request.body.get("goodReleaseId")
        good = made_by(history, good_release) if isinstance(good_release, str) else None
        back_to = good or running
        annotations: dict[str, str | None] = {}
        image = None
        if back_to is not None:
            values = self._helm(lambda c: c.get_values(self.target.release,
                                                       revision=back_to.revision))
            repository = get_value(values, self.target.image_values.repository)
            digest = get_value(values, self.target.image_values.digest)
            image = f"{repository}@{digest}" if repository and digest else None
            # The label holds the id itself unless it was too long for a label (then a hash).
            made = good_release if good is not None else back_to.release_id
            annotations = {"release-workflow.io/release-id": made,
                           "release-workflow.io/digest": digest}
        newest = latest(history)
        return HelmReport({
            "kind": self.KIND, "release": self.target.release,
            "revision": back_to.revision if back_to else 0,
            "running": running.revision if running else 0,
            "newest": newest.revision if newest else 0,
            "chart": back_to.chart if back_to else None,
            "chartVersion": back_to.chart_version if back_to else None,
            "image": image, "annotations": annotations})

    def deploy(self, image: str, change_cause: str, release_id: str) -> HelmReport:
        """Start `upgrade --install` of the pinned chart with `image`; the new revision.

        Nothing is started when our release's revision is already deployed or under way."""
        repository, _, digest = image.partition("@")
        if not digest.startswith("sha256:"):
            raise InvalidTarget(f"image {image!r} is not pinned by digest")
        history = self._history()
        newest = latest(history)
        if newest is not None and newest.release_id == release_label(release_id) and \
                (newest.pending or newest.status == "deployed"):
            return self._started(newest)
        if newest is not None and newest.pending:
            raise HelmFailed(f"helm release {self.target.release} is {newest.status}: another"
                             " Helm operation is in progress; nothing was deployed")
        pin = PinnedChart.from_dict(self.request.body.get("chart"))
        chart = self._chart(pin)
        source = for_spec(self.request.secrets)
        secrets = {name: source.get(name) for name in set(self.target.secret_values.values())}
        secret_values = list(secrets.values())
        values = self.target.release_values(repository, digest, secrets)
        self._check_renders(chart, pin, values, digest, secret_values, install=newest is None)
        timeout = int(self.request.seconds("timeoutSeconds", 600))
        description = one_line(f"{change_cause} (chart {pin.name} {pin.version})", 500)
        labels = {RELEASE_ID_LABEL: release_label(release_id)}
        before = newest.revision if newest else 0

        def upgrade(config: helm_python.Config) -> Any:
            if before == 0:
                return config.install(chart, self.target.release, values, wait=WAIT,
                                      timeout=timeout, description=description, labels=labels)
            return config.upgrade(chart, self.target.release, values, wait=WAIT,
                                  timeout=timeout, description=description, labels=labels,
                                  max_history=self.target.max_history)

        run = runs.start(self.key, "upgrade", release_id, lambda: self._helm(upgrade))
        return self._started(self._recorded(run, before, secret_values))

    def await_ready(self, deadline: float, max_wait: float) -> HelmReport:
        """Where the newest revision stands, looking for at most `max_wait` seconds: done
        once Helm recorded an outcome, or (unless the request says `settling`: the failure
        was told already) as soon as the chart's pods fail while Helm still waits."""
        give_up = time.monotonic() + max(0.0, min(max_wait, deadline - time.time()))
        settling = self.request.body.get("settling") is True
        run = runs.current(self.key)
        while True:
            newest = self._returned.pop() if self._returned else latest(self._history())
            if newest is None:
                return _readiness("failed", "NotInstalled",
                                  f"helm release {self.target.release} has no revision")
            if not newest.pending:
                return self._outcome(newest)
            pods = None if settling else self._pod_failure()
            if pods is not None:  # Helm still waits; report now, roll back once it returned
                return _readiness("failed", pods[0], pods[1], newest, settled=False)
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                break
            if run is not None:
                run.wait(min(LOOK_SECONDS, remaining))
            else:  # Helm runs in another process: its records say when it returned
                time.sleep(min(LOOK_SECONDS, remaining))
        message = f"helm revision {newest.revision} is {newest.status}"
        if settling:
            return _readiness("failed", "HelmStillWaiting", message + ": Helm has not returned"
                              " yet; nothing rolls back before it does", newest, settled=False)
        return _readiness("progressing", None, message, newest)

    def _outcome(self, revision: Revision) -> HelmReport:
        """Readiness once Helm recorded how `revision` ended."""
        if revision.status == "deployed":
            return _readiness("complete", None, f"helm revision {revision.revision} deployed"
                              f" (chart {revision.chart} {revision.chart_version})", revision)
        reason = self._description(revision) or revision.status
        pods = self._pod_failure()
        return _readiness("failed", "HelmFailed", one_line(
            f"helm revision {revision.revision} {revision.status}: {reason}"
            + (f"; {pods[1]}" if pods else ""), 600), revision)

    def verify(self, checks: Sequence[Any], secrets: Mapping[str, Any]) -> Evidence:
        """The HTTP checks, then `helm test` when the policy asks for it."""
        measured = run_checks(checks, secrets) if checks else None
        if not self.target.test.enabled:
            return measured or Evidence.of("http", ())
        tested = self._helm_test()
        if measured is None:
            return tested
        return Evidence.of("acceptance", (*measured.measurements, *tested.measurements))

    def restore(self, snapshot: Mapping[str, Any], change_cause: str | None) -> HelmReport:
        """`helm rollback` to the snapshot's revision, started on a thread like an upgrade."""
        revision = snapshot.get("revision") if isinstance(snapshot, Mapping) else None
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            raise InvalidTarget("a helm snapshot needs its revision")
        newest = latest(self._history())
        if (newest.revision if newest else 0) == snapshot.get("newest") \
                and revision in (0, snapshot.get("running")):
            return HelmReport({  # it runs what it ran, and nothing was recorded since
                "release": self.target.release, "changed": False, "rolledBackTo": None,
                "rollout": _readiness("complete", None, "nothing to restore: Helm recorded"
                                      " no revision since the snapshot").to_dict()})
        if revision == 0:
            raise HelmFailed(f"helm release {self.target.release} had no earlier revision to"
                             " roll back to; the failed first install stays (helm uninstall"
                             " removes it)")
        if newest is not None and newest.pending:
            raise HelmFailed(f"helm release {self.target.release} is {newest.status}: another"
                             " Helm operation is in progress; not rolled back")
        timeout = max(1, int(self.request.deadline() - time.time()))

        def rollback(config: helm_python.Config) -> Any:
            return config.rollback(self.target.release, version=revision, wait=WAIT,
                                   timeout=timeout)

        before = newest.revision if newest else 0
        run = runs.start(self.key, "rollback", None, lambda: self._helm(rollback))
        recorded = self._recorded(run, before, [])
        return HelmReport({"release": self.target.release, "revision": recorded.revision,
                           "rolledBackTo": revision, "changeCause": change_cause})

    # --- Helm and the cluster ------------------------------------------------------------

    def _helm(self, action: Callable[[helm_python.Config], T]) -> T:
        """Run one SDK action with a fresh Config; Helm's errors become ours, one line each."""
        access = self._access()
        try:
            with access.config() as config:
                return action(config)
        except helm_python.HelmNotFoundError:
            raise
        except helm_python.HelmKubeError as bad:
            raise ClusterUnavailable(self.target.cluster, self.target.namespace,
                                     _first_line(bad)) from None
        except helm_python.HelmError as bad:
            raise HelmFailed(f"helm release {self.target.release} in namespace"
                             f" {self.target.namespace}: {_first_line(bad)}") from None

    def _access(self) -> HelmAccess:
        return helm_access(self.request.connection, self.request.secrets,
                           self.target.namespace)

    def _history(self) -> list[Revision]:
        try:
            entries = self._helm(lambda c: c.history(self.target.release))
        except helm_python.HelmNotFoundError:
            return []
        return [Revision.from_sdk(entry) for entry in entries]

    def _description(self, revision: Revision) -> str | None:
        info = self._helm(lambda c: c.get_all(self.target.release,
                                               revision=revision.revision)).get("info") or {}
        text = info.get("description")
        return one_line(str(text), 400) if text else None

    def _recorded(self, run: runs.Run, before: int, secret_values: list[str]) -> Revision:
        """The revision Helm recorded for `run`; its error when it failed before recording."""
        give_up = time.monotonic() + RECORD_WAIT_SECONDS
        while True:
            finished = run.wait(POLL_SECONDS)
            newest = latest(self._history())
            if newest is not None and newest.revision > before:
                if finished:  # read after Helm returned: what `await_ready` would read next
                    self._returned[:] = [newest]
                return newest
            if finished and run.error is not None:
                message = _scrubbed(str(run.error), secret_values)
                raise HelmFailed(message) if not isinstance(run.error, ClusterUnavailable) \
                    else run.error
            if finished or time.monotonic() > give_up:
                raise HelmFailed(f"helm release {self.target.release}: Helm recorded no new"
                                 f" revision after {run.action}")

    def _started(self, revision: Revision) -> HelmReport:
        return HelmReport({"release": self.target.release, "revision": revision.revision,
                           "status": revision.status, "changed": True})

    def _pod_failure(self) -> tuple[str, str] | None:
        """(reason, message) of the first Deployment of the newest revision whose pods fail."""
        manifest = self._helm(lambda c: c.status(self.target.release)).get("manifest") or ""
        for name in deployments_in(manifest):
            where = DeploymentTarget(self.target.cluster, self.target.namespace, name, "-")
            status = with_deployments(self.request.connection, self.request.secrets,
                                      functools.partial(_rollout_status, where))
            if status.failed:
                return status.failed, f"deployment {name}: {status.message}"
        return None

    def _chart(self, pin: PinnedChart) -> helm_python.Chart:
        """Helm's chart for the pin: fetched by digest, or the app's folder (same digest)."""
        if not self.target.oci:
            folder_pin, chart = load_folder(APP_ROOT, self.target.chart)
            if folder_pin.digest != pin.digest:
                raise ChartError(f"chart folder {self.target.chart} changed since the release"
                                 f" pinned it ({pin.digest}, now {folder_pin.digest})")
            return chart
        registry = self.target.chart_registry
        if registry is None:
            raise InvalidTarget(f"chart {self.target.chart}: its registry is not in the policy"
                                " snapshot")
        _, repository = split_oci(pin.source)
        return load_archive(_archive(RegistryEndpoint.from_dict(registry), repository,
                                     pin.digest), pin.source)

    def _check_renders(self, chart: helm_python.Chart, pin: PinnedChart,
                       values: dict[str, Any], digest: str, secret_values: list[str], *,
                       install: bool) -> None:
        """Render offline; a bad value, a failing template or an unused image key fails here."""
        try:
            chart.validate_schema(values)
            rendered = chart.render(values, name=self.target.release,
                                    namespace=self.target.namespace, is_install=install,
                                    is_upgrade=not install)
        except helm_python.HelmError as bad:
            raise ChartError(_scrubbed(f"chart {pin.name} {pin.version} does not render with"
                                       f" the release's values: {_first_line(bad)}",
                                       secret_values)) from None
        if not any(digest in text for text in rendered.values()):
            raise ChartError(f"chart {pin.name} {pin.version} does not use the value"
                             f" {self.target.image_values.digest}: the image would not be"
                             " deployed (set target.helm.imageValues)")

    def _helm_test(self) -> Evidence:
        """`helm test`: one measurement; a failure's summary ends with its log's last line."""
        timeout = int(self.target.test.timeout.total_seconds() if self.target.test.timeout
                      else 300)
        try:
            result = self._helm(lambda c: c.test(self.target.release, timeout=timeout,
                                                 logs=True))
        except HelmFailed as failed:
            tail = _tail(self._test_logs())
            last = tail.splitlines()[-1] if tail else "no log"
            return Evidence.of(HELM_TEST, (Measurement(
                "helm test", Verdict.FAILED,
                one_line(f"{str(failed).split(': ', 1)[-1]}; log: {last}", 400),
                details={"logTail": tail}),))
        logs = str(result.get("logs") or "") if isinstance(result, Mapping) else ""
        hooks = self._test_hooks()
        return Evidence.of(HELM_TEST, (Measurement(
            "helm test", Verdict.PASSED,
            f"{len(hooks)} test hook{'s' if len(hooks) != 1 else ''} succeeded"
            + (f" ({', '.join(hooks)})" if hooks else ""),
            details={"logTail": _tail(logs)}),))

    def _test_hooks(self) -> list[str]:
        """The names of the release's test hook Pods."""
        hooks = self._helm(lambda c: c.get_all(self.target.release)).get("hooks") or []
        return [str(h.get("name")) for h in hooks
                if "test" in (h.get("events") or []) and h.get("kind") == "Pod"]

    def _test_logs(self) -> str:
        """The test hook Pods' logs after a failed `helm test` (kept by Helm's default
        `before-hook-creation` delete policy until the next test)."""
        names = self._test_hooks()

        def read(deployments: Deployments) -> str:
            return "\n".join(deployments.pod_log(self.target.namespace, name, LOG_TAIL_LINES)
                             for name in names)

        return with_deployments(self.request.connection, self.request.secrets, read)


@functools.lru_cache(maxsize=16)
def _archive(endpoint: RegistryEndpoint, repository: str, digest: str) -> bytes:
    """A chart archive by digest (immutable, so cached per process)."""
    return fetch_oci(for_endpoint(endpoint), repository, digest)[1]


def _rollout_status(target: DeploymentTarget, deployments: Deployments) -> RolloutStatus:
    return deployments.rollout_status(target)


def _readiness(state: str, reason: str | None, message: str, revision: Revision | None = None,
               *, settled: bool = True) -> HelmReport:
    data: dict[str, Any] = {"state": state, "reason": reason, "message": message}
    if revision is not None:
        data["revision"] = revision.revision
    if state == "failed" and not settled:
        data["settled"] = False
    return HelmReport(data)


def _scrubbed(text: str, secret_values: list[str]) -> str:
    for value in secret_values:
        if value:
            text = text.replace(value, "***")
    return text


def _tail(logs: str) -> str:
    return "\n".join(logs.strip().splitlines()[-LOG_TAIL_LINES:])


def _first_line(error: BaseException) -> str:
    """Helm's message on one line (its detail is on the lines after the first)."""
    return one_line(str(error).strip() or type(error).__name__, 400)


