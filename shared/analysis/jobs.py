"""The `job` provider: an acceptance test as a Kubernetes Job, one number (1 passed, 0 failed).

One measurement creates one batch/v1 Job in the target's namespace from the metric's template
(image, command, args with their variables filled in; `backoffLimit`; `activeDeadlineSeconds`
= the timeout; `ttlSecondsAfterFinished` for clean-up), named after the target and a hash of
release, environment, round and metric, so a retried activity finds the Job its first attempt
made instead of making a second. It then polls the Job until Kubernetes says Complete or Failed
(at most the timeout plus a grace for the Job controller to write its verdict). A failure's
reason is the Job's condition and the last lines of the failed pod's log. Reached through the
same cluster connection as the deploy activities (shared/cluster/clusters.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

# By module, as shared/cluster/deployments.py does: the package loads its APIs lazily.
from kubernetes.client.api.batch_v1_api import BatchV1Api
from kubernetes.client.api.core_v1_api import CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.client.models.v1_job import V1Job
from urllib3.exceptions import HTTPError as TransportError

from shared.cluster.errors import ClusterAuthError, InvalidTarget
from shared.cluster.requests import ClusterRequest
from shared.policy.analysis import JobProvider, expand
from shared.text import one_line

PREFIX = "release-workflow.io/"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "release-workflow"
CONTAINER = "acceptance"
TTL_SECONDS = 3600  # a finished Job (and its pods' logs) stays an hour for people to look at
GRACE_SECONDS = 5.0  # past the timeout, for the Job controller to write DeadlineExceeded
POLL_SECONDS = 1.0
LOG_LINES = 3
LOG_CHARS = 160  # the log's end: a measurement's summary holds 300
NAME_LIMIT = 63  # the Job's name is its pods' `job-name` label value
HASH_CHARS = 10
BACKGROUND = "Background"
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]")
_NOT_NAME = re.compile(r"[^a-z0-9-]")


@dataclass(frozen=True)
class Outcome:
    """What one Job came to: `value` 1.0 or 0.0, None without a verdict; `why` for people."""

    value: float | None
    why: str
    fatal: bool = False
    unreachable: bool = False


@dataclass(frozen=True)
class JobSite:
    """Where an analysis's Jobs run (the target's cluster and namespace, its connection and
    secrets) and which measurement round this is (for the Jobs' names and labels)."""

    cluster: ClusterRequest
    release_id: str
    environment: str
    round: int

    @classmethod
    def from_request(cls, request: Mapping[str, Any], environment: str) -> JobSite:
        """A `measure_analysis` request's site (`target`, `connection`, `secrets`, `round`,
        `record.releaseId`); InvalidTarget naming what is wrong."""
        cluster = ClusterRequest.from_dict(dict(request))
        if not isinstance(cluster.target.get("namespace"), str) or not cluster.target["namespace"]:
            raise InvalidTarget("target needs namespace")
        if not _target_name(cluster.target):
            raise InvalidTarget("target needs deployment or release")
        number = request.get("round", 1)
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidTarget("round must be a positive whole number")
        record = request.get("record")
        release = str(record.get("releaseId") or "") if isinstance(record, dict) else ""
        return cls(cluster, release, environment, number)

    @property
    def namespace(self) -> str:
        return str(self.cluster.target["namespace"])

    @property
    def where(self) -> str:
        return f"cluster {self.cluster.target['cluster']}, namespace {self.namespace}"

    def job_name(self, metric: str) -> str:
        """`<target>-analysis-<hash>`: the same for the same release, environment, round and
        metric (a retried activity finds its Job), at most 63 characters."""
        key = f"{self.release_id}\n{self.environment}\n{self.round}\n{metric}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:HASH_CHARS]
        suffix = f"-analysis-{digest}"
        base = _NOT_NAME.sub("-", _target_name(self.cluster.target).lower())
        return f"{base[:NAME_LIMIT - len(suffix)].strip('-') or 'job'}{suffix}"

    def labels(self, metric: str) -> dict[str, str]:
        """The Job's and its pods' labels: who made it, for which release, environment, round
        and metric (values cut to what a label value may hold)."""
        return {MANAGED_BY: MANAGER, PREFIX + "analysis-metric": _label(metric),
                PREFIX + "release-id": _label(self.release_id),
                PREFIX + "environment": _label(self.environment),
                PREFIX + "round": str(self.round)}


def job_body(provider: JobProvider, metric: str, variables: Mapping[str, str],
             site: JobSite) -> dict[str, Any]:
    """The batch/v1 Job of one measurement (KeyError for a variable without a value)."""
    container: dict[str, Any] = {"name": CONTAINER, "image": expand(provider.image, variables)}
    if provider.command:
        container["command"] = [expand(part, variables) for part in provider.command]
    if provider.args:
        container["args"] = [expand(part, variables) for part in provider.args]
    labels = site.labels(metric)
    annotations = {PREFIX + "release-id": site.release_id, PREFIX + "analysis-metric": metric}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": site.job_name(metric), "namespace": site.namespace,
                     "labels": labels, "annotations": annotations},
        "spec": {
            "backoffLimit": provider.backoff_limit,
            "activeDeadlineSeconds": max(1, int(provider.timeout.total_seconds())),
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": {"labels": dict(labels)},
                         "spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }


class JobRun:
    """One measurement's Job on one API client: create (or find), wait, judge."""

    def __init__(self, api: client.ApiClient, site: JobSite, *,
                 poll_seconds: float = POLL_SECONDS, grace_seconds: float = GRACE_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._batch = BatchV1Api(api)
        self._core = CoreV1Api(api)
        self._api = api
        self._site = site
        self._poll = poll_seconds
        self._grace = grace_seconds
        self._clock = clock
        self._sleep = sleep

    def measure(self, provider: JobProvider, metric: str,
                variables: Mapping[str, str]) -> Outcome:
        """Run the metric's Job (or follow the one a first attempt made) to its verdict."""
        try:
            body = job_body(provider, metric, variables, self._site)
        except KeyError as missing:
            return Outcome(None, f"no value for variable ${{{missing.args[0]}}}", fatal=True)
        name = body["metadata"]["name"]
        timeout = provider.timeout.total_seconds()
        try:
            self._create(body)
            ends = self._clock() + timeout + self._grace
            while True:
                job = self._read(name)
                if job is None:
                    return Outcome(None, f"job {name} was deleted before it finished")
                verdict = _terminal(job)
                if verdict is not None:
                    return self._judge(name, job, verdict)
                remaining = ends - self._clock()
                if remaining <= 0:
                    self._delete(name)
                    return Outcome(None, f"job {name} did not finish within {timeout:g} s")
                self._sleep(min(self._poll, remaining))
        except ApiException as failed:
            return self._failure(failed, name)
        except TransportError as unreachable:
            return Outcome(None, f"{self._site.where}: cannot reach the API server:"
                                 f" {type(unreachable).__name__}", unreachable=True)

    def _create(self, body: dict[str, Any]) -> None:
        job = V1Job.from_dict(body)
        assert job is not None  # from_dict answers None only for None
        try:
            self._batch.create_namespaced_job(self._site.namespace, job)
        except ApiException as failed:
            if failed.status != 409:  # AlreadyExists: a first attempt made it; follow that one
                raise

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            return self._json(self._batch.read_namespaced_job(name, self._site.namespace))
        except ApiException as failed:
            if failed.status == 404:
                return None
            raise

    def _delete(self, name: str) -> None:
        try:
            self._batch.delete_namespaced_job(name, self._site.namespace,
                                              propagation_policy=BACKGROUND)
        except ApiException as failed:
            if failed.status != 404:
                raise

    def _judge(self, name: str, job: dict[str, Any], verdict: dict[str, Any]) -> Outcome:
        if verdict["type"] == "Complete":
            return Outcome(1.0, f"job {name} succeeded")
        why = f"job {name} failed: {verdict.get('reason') or verdict.get('message') or 'Failed'}"
        log = self._last_log(job)
        return Outcome(0.0, f"{why}; log: {log}" if log else why)

    def _last_log(self, job: dict[str, Any]) -> str:
        """The last lines of the newest failed pod's log, on one line, its end kept; "" when
        none can be read (the pod was deleted, or the identity may not read logs)."""
        uid = job["metadata"].get("uid", "")
        try:
            pods = self._json(self._core.list_namespaced_pod(
                self._site.namespace, label_selector=f"controller-uid={uid}")).get("items") or []
            failed = sorted((pod for pod in pods
                             if (pod.get("status") or {}).get("phase") == "Failed"),
                            key=lambda pod: str(pod["metadata"].get("creationTimestamp")))
            if not failed:
                return ""
            pod = failed[-1]["metadata"]["name"]
            text = str(self._core.read_namespaced_pod_log(pod, self._site.namespace,
                                                          tail_lines=LOG_LINES))
        except (ApiException, TransportError):
            return ""
        line = one_line(" | ".join(part.strip() for part in text.splitlines() if part.strip()))
        return line if len(line) <= LOG_CHARS else "…" + line[-(LOG_CHARS - 1):]

    def _failure(self, failed: ApiException, name: str) -> Outcome:
        reason = one_line(_status_message(failed), 200)
        where = self._site.where
        if failed.status == 401:
            raise ClusterAuthError(self._site.cluster.target["cluster"], self._site.namespace,
                                   f"credentials rejected (401) on job {name}: {reason}")
        if failed.status == 403:
            return Outcome(None, f"{where}: forbidden (403): {reason}; the app's identity needs"
                                 " create, get and delete on jobs, list on pods and get on"
                                 " pods/log in the namespace", fatal=True)
        if failed.status in (400, 422):
            return Outcome(None, f"{where}: job {name} refused ({failed.status}): {reason}",
                           fatal=True)
        return Outcome(None, f"{where}: job {name}: API server answered {failed.status}:"
                             f" {reason}", unreachable=True)

    def _json(self, model: Any) -> dict[str, Any]:
        # kubernetes ships py.typed but leaves sanitize_for_serialization unannotated
        data: dict[str, Any] = self._api.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
        return data


def measure_job(provider: JobProvider, metric: str, variables: Mapping[str, str],
                site: JobSite, **options: Any) -> Outcome:
    """One measurement through the site's cluster connection (a rotated kubeconfig is read
    again once, as the deploy activities do)."""
    from shared.cluster.clusters import with_api_client

    try:
        return with_api_client(site.cluster.connection, site.cluster.secrets,
                               lambda api: JobRun(api, site, **options).measure(
                                   provider, metric, variables))
    except ClusterAuthError as rejected:
        return Outcome(None, str(rejected), fatal=True)
    except InvalidTarget as bad:
        return Outcome(None, f"cluster connection: {bad}", fatal=True)


def _terminal(job: dict[str, Any]) -> dict[str, Any] | None:
    """The Job's Complete or Failed condition when it is True, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return dict(condition)
    return None


def _target_name(target: Mapping[str, Any]) -> str:
    return str(target.get("release") or target.get("deployment") or "")


def _label(value: str) -> str:
    """`value` as a label value: allowed characters only, at most 63, alphanumeric ends."""
    return _NOT_LABEL.sub("-", value)[:63].strip("-_.")


def _status_message(failed: ApiException) -> str:
    try:
        return str(json.loads(failed.body or "{}").get("message") or failed.reason)
    except ValueError:
        return str(failed.reason)
