"""The Job controller (and the TTL-after-finished controller) as a function of time.

`JobController.sync(now)` brings every batch/v1 Job to what the real controllers would show
at `now`: one pod per attempt (named `<job>-<suffix>`, owned by the Job, labelled `job-name`
and `controller-uid` like the template), a new attempt after a failed one with the kubelet's
back-off (10 s, doubling, at most 6 min) while `failed <= backoffLimit`, then the status as
Kubernetes 1.31+ writes it: `startTime`, `active`, `ready`, `succeeded`, `failed`,
`completionTime`, and the conditions `SuccessCriteriaMet` + `Complete` (reason
CompletionsReached) or `FailureTarget` + `Failed` (BackoffLimitExceeded, or DeadlineExceeded
once `activeDeadlineSeconds` have passed since `startTime`, which deletes the running pod).
`ttlSecondsAfterFinished` deletes a finished Job and its pods. The pods themselves are run by
the Deployment controller's kubelet part (controller.py): they end Succeeded or Failed by
their image's behaviour after `job_seconds`. Pods whose Job is gone are deleted (background
garbage collection). Not modelled: parallelism, completions, indexed Jobs, suspend,
podFailurePolicy, successPolicy.
"""

from __future__ import annotations

import copy
from datetime import datetime

from sandbox.kube.kinds import JOB_NAME_LABELS, JOB_UID_LABELS
from sandbox.kube.objects import JsonDict, name_suffix, rfc3339
from sandbox.kube.store import Store

BACKOFF_SECONDS = 10.0  # the first retry's delay; doubles per failure (the Job controller's)
MAX_BACKOFF_SECONDS = 360.0
COMPLETE = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_LIMIT = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE = ("DeadlineExceeded", "Job was active longer than specified deadline")


class JobController:
    """Reconciles every Job in the store to a point in time (stateless: all in the store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._had_jobs = True  # so the first look collects pods of Jobs deleted before it

    def sync(self, now: float) -> None:
        """Pods for the Jobs that need one, each Job's status at `now`, TTL clean-up."""
        jobs = self.store.list("jobs")
        if not jobs and not self._had_jobs:
            return  # nothing to do: spare the other kinds' requests a look at every pod
        self._had_jobs = bool(jobs)
        live = {job["metadata"]["uid"] for job in jobs}
        for pod in self.store.list("pods"):
            owner = job_uid(pod)
            if owner is not None and owner not in live:
                self.store.delete("pods", pod["metadata"]["namespace"], _name(pod))
        for job in jobs:
            self._sync_job(job, now)

    def _sync_job(self, job: JsonDict, now: float) -> None:
        metadata, spec = job["metadata"], job["spec"]
        status = copy.deepcopy(job.get("status") or {})
        if _finished(status):
            self._expire(job, status, now)
            return
        start = _seconds(status["startTime"]) if status.get("startTime") else now
        pods = self._pods(job)
        succeeded = [pod for pod in pods if _phase(pod) == "Succeeded"]
        failed = [pod for pod in pods if _phase(pod) == "Failed"]
        active = [pod for pod in pods if _phase(pod) not in ("Succeeded", "Failed")]
        deadline = spec.get("activeDeadlineSeconds")
        ends_at = start + deadline if deadline else None
        done_at = min((_finished_at(pod, now) for pod in succeeded), default=None)
        counted_failed = int(status.get("failed", 0))
        failures = max(counted_failed, len(failed))
        conditions: list[JsonDict] = []
        completion = None
        if done_at is not None and (ends_at is None or done_at <= ends_at):
            conditions = [_condition("SuccessCriteriaMet", COMPLETE, done_at),
                          _condition("Complete", COMPLETE, done_at)]
            completion = done_at
        elif ends_at is not None and now >= ends_at:
            for pod in active:  # the controller deletes what still runs
                self.store.delete("pods", metadata["namespace"], _name(pod))
            failures += len(active)
            active = []
            conditions = [_condition("FailureTarget", DEADLINE, ends_at),
                          _condition("Failed", DEADLINE, ends_at)]
        elif failures > spec.get("backoffLimit", 6):
            at = max(_finished_at(pod, now) for pod in failed) if failed else now
            conditions = [_condition("FailureTarget", BACKOFF_LIMIT, at),
                          _condition("Failed", BACKOFF_LIMIT, at)]
        elif not active:
            last = max((_finished_at(pod, now) for pod in failed), default=start)
            delay = min(BACKOFF_SECONDS * 2 ** (failures - 1), MAX_BACKOFF_SECONDS) \
                if failures else 0.0
            if now >= last + delay:
                active = [self._new_pod(job, failures + len(succeeded), now)]
        ready = sum(1 for pod in active if _ready(pod))
        new_status: JsonDict = {"startTime": rfc3339(start)}
        if active:
            new_status["active"] = len(active)
        new_status.update({"ready": ready, "terminating": 0})
        if succeeded:
            new_status["succeeded"] = len(succeeded)
        if failures:
            new_status["failed"] = failures
        if conditions:
            new_status["conditions"] = conditions
        if completion is not None:
            new_status["completionTime"] = rfc3339(completion)
        new_status["uncountedTerminatedPods"] = {}
        if new_status != status:
            job["status"] = new_status
            self.store.put("jobs", job)

    def _expire(self, job: JsonDict, status: JsonDict, now: float) -> None:
        """The TTL-after-finished controller: delete the Job (its pods go with it)."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        ended = next(_seconds(c["lastTransitionTime"]) for c in status["conditions"]
                     if c["type"] in ("Complete", "Failed") and c["status"] == "True")
        if now >= ended + ttl:
            namespace = job["metadata"]["namespace"]
            self.store.delete("jobs", namespace, _name(job))
            for pod in self._pods(job):
                self.store.delete("pods", namespace, _name(pod))

    def _pods(self, job: JsonDict) -> list[JsonDict]:
        uid = job["metadata"]["uid"]
        pods = [pod for pod in self.store.list("pods", job["metadata"]["namespace"])
                if job_uid(pod) == uid]
        return pods

    def _new_pod(self, job: JsonDict, attempt: int, now: float) -> JsonDict:
        metadata, template = job["metadata"], job["spec"]["template"]
        seed = f"{metadata['uid']}/{attempt}"
        name = f"{metadata['name']}-{name_suffix(seed)}"
        labels = dict(template.get("metadata", {}).get("labels") or {})
        for key in JOB_NAME_LABELS:
            labels[key] = metadata["name"]
        for key in JOB_UID_LABELS:
            labels[key] = metadata["uid"]
        annotations = template.get("metadata", {}).get("annotations") or {}
        pod = {
            "metadata": {
                "name": name, "generateName": f"{metadata['name']}-",
                "namespace": metadata["namespace"], "uid": self.store.new_uid(),
                "creationTimestamp": rfc3339(now), "labels": labels,
                **({"annotations": dict(annotations)} if annotations else {}),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                     "name": metadata["name"], "uid": metadata["uid"],
                                     "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": copy.deepcopy(template["spec"]),
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        return self.store.put("pods", pod)


def job_uid(pod: JsonDict) -> str | None:
    """The uid of the Job that controls `pod`, or None."""
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Job" and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def orphan(store: Store, job: JsonDict) -> None:
    """Deletion with propagationPolicy Orphan (batch/v1's default): the Job's pods stay,
    without their owner reference."""
    uid = job["metadata"]["uid"]
    for pod in store.list("pods", job["metadata"]["namespace"]):
        refs = pod["metadata"].get("ownerReferences") or []
        if any(ref.get("uid") == uid for ref in refs):
            kept = [ref for ref in refs if ref.get("uid") != uid]
            if kept:
                pod["metadata"]["ownerReferences"] = kept
            else:
                pod["metadata"].pop("ownerReferences", None)
            store.put("pods", pod)


def _condition(kind: str, why: tuple[str, str], at: float) -> JsonDict:
    return {"type": kind, "status": "True", "lastProbeTime": rfc3339(at),
            "lastTransitionTime": rfc3339(at), "reason": why[0], "message": why[1]}


def _finished(status: JsonDict) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions") or [])


def _phase(pod: JsonDict) -> str:
    return str((pod.get("status") or {}).get("phase", "Pending"))


def _ready(pod: JsonDict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _finished_at(pod: JsonDict, now: float) -> float:
    """When a finished pod's last container ended (`now` when the status does not say)."""
    ends = [status["state"]["terminated"]["finishedAt"]
            for status in (pod.get("status") or {}).get("containerStatuses") or []
            if "terminated" in status.get("state", {})]
    return max(_seconds(end) for end in ends) if ends else now


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _name(obj: JsonDict) -> str:
    return str(obj["metadata"]["name"])
