"""The Deployment controller, ReplicaSet controller and kubelet, collapsed into one time function.

`sync(now)` brings ReplicaSets, pods and Deployment status to what the real controllers would
show at `now`; the simulator calls it before every request for these kinds and while a watch is
open, so time only matters when someone looks. It also collects garbage (a deleted
Deployment's ReplicaSets and pods) and runs pods created through the API: run-to-completion
pods (Helm's test hooks) end Succeeded or Failed by their image's behaviour, with a log.
A rollout starts when the controller first sees a new Deployment generation: the ReplicaSet
whose template equals the Deployment's is reused (a rollback: it gets the next revision and a
`revision-history` annotation) or created, and its pods become ready evenly over
`rollout_seconds` while old ReplicaSets are scaled down within maxSurge/maxUnavailable. Pods of
an image with a failing behaviour never become ready, so such a rollout stalls and, after
`progressDeadlineSeconds`, reports ProgressDeadlineExceeded. Not modelled: paused Deployments,
minReadySeconds, scheduling, pod deletion grace, the Scale subresource.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from sandbox.kube.objects import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    NOT_COPIED_ANNOTATIONS,
    POD_TEMPLATE_HASH,
    REVISION,
    REVISION_HISTORY,
    ApiError,
    JsonDict,
    name_suffix,
    rfc3339,
    surge_and_unavailable,
    template_hash,
    template_without_hash,
)
from sandbox.kube.store import Store

Behaviour = Literal["ok", "crash", "pull-error", "never-ready", "test-fail"]
BEHAVIOURS: tuple[str, ...] = get_args(Behaviour)
HEALTHY = ("ok", "test-fail")  # "test-fail": serves fine, but its test run fails
FAILING_RUNS = ("crash", "test-fail")
RUN_TO_COMPLETION = ("Never", "OnFailure")
PULL_ERROR_SECONDS = 5.0  # ErrImagePull before the kubelet backs off to ImagePullBackOff
NODE_NAME = "sandbox-node-1"
MAX_LATENCY_MS = 60_000.0  # a stand-in's added latency at most (a minute)


@dataclass(frozen=True)
class Rollout:
    """The controller's view of one Deployment generation, fixed when it first saw it."""

    generation: int
    new_rs: str
    started: float
    seconds: float
    desired: int
    surge: int
    max_unavailable: int
    deadline: int | None
    new_ready: int
    old_ready: dict[str, int]


@dataclass(frozen=True)
class _Plan:
    replicas: dict[str, int]
    ready: dict[str, int]
    complete: bool
    last_progress: float
    complete_at: float
    timed_out_at: float | None


class DeploymentController:
    """Reconciles every Deployment in the store to a point in time."""

    def __init__(self, store: Store, rollout_seconds: float = 0.0,
                 job_seconds: float = 0.0) -> None:
        self.store = store
        self.rollout_seconds = rollout_seconds
        self.job_seconds = job_seconds  # how long a Job's pod runs before it ends
        # controllers of other kinds (Jobs) that make bare pods: run before and after the
        # pods are brought to `now`, so they see what their pods came to
        self.workloads: list[Callable[[float], None]] = []
        self._behaviours: dict[str, Behaviour] = {}
        self._traffic: dict[str, tuple[float, float]] = {}  # pattern -> (errors, latency_ms)
        self._behaviour_changed = float("-inf")
        self._rollouts: dict[str, Rollout] = {}
        self._pod_created: dict[tuple[str, str], tuple[float, int]] = {}
        self._pod_serial = 0

    def resume(self, writes: int) -> None:
        """Continue after objects were loaded from disk: new pod names must not repeat old ones
        (`writes`, the loaded resourceVersion, is at least the number of pods ever made)."""
        self._pod_serial = max(self._pod_serial, writes)

    # --- image behaviours ------------------------------------------------------------------

    def set_behaviour(self, pattern: str, behaviour: Behaviour, now: float,
                      errors: float = 0.0, latency_ms: float = 0.0) -> None:
        """Images containing `pattern` behave so from now on (the latest matching rule wins);
        `errors` (share of requests answered 500) and `latency_ms` shape their stand-ins."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown image behaviour {behaviour!r}: use one of {BEHAVIOURS}")
        check_traffic(errors, latency_ms)
        self._behaviours.pop(pattern, None)
        self._behaviours[pattern] = behaviour
        self._traffic.pop(pattern, None)
        self._traffic[pattern] = (float(errors), float(latency_ms))
        self._behaviour_changed = now

    def behaviour(self, image: str) -> Behaviour:
        found: Behaviour = "ok"
        for pattern, behaviour in self._behaviours.items():
            if pattern in image:
                found = behaviour
        return found

    def traffic(self, image: str) -> tuple[float, float]:
        """(errors, latency_ms) of the latest rule matching `image`; (0, 0) without one."""
        found = (0.0, 0.0)
        for pattern, traffic in self._traffic.items():
            if pattern in image:
                found = traffic
        return found

    def _healthy(self, template: JsonDict) -> bool:
        containers = template.get("spec", {}).get("containers", [])
        return all(self.behaviour(c.get("image", "")) in HEALTHY for c in containers)

    # --- reconciliation ----------------------------------------------------------------------

    def sync(self, now: float) -> None:
        """Bring every Deployment, its ReplicaSets and their pods, and bare pods, to `now`."""
        self._collect_garbage()
        for deployment in self.store.list("deployments"):
            self._sync_deployment(deployment, now)
        for workload in self.workloads:
            workload(now)
        for pod in self.store.list("pods"):
            if not any(ref.get("kind") == "ReplicaSet"
                       for ref in pod["metadata"].get("ownerReferences") or []):
                self._sync_bare_pod(pod, now)
        for workload in self.workloads:
            workload(now)

    def _collect_garbage(self) -> None:
        """Delete ReplicaSets and pods whose owning Deployment or ReplicaSet is gone."""
        deployments = {d["metadata"]["uid"] for d in self.store.list("deployments")}
        for uid in set(self._rollouts) - deployments:
            del self._rollouts[uid]
        replicasets = set()
        for rs in self.store.list("replicasets"):
            if _owner_uid(rs, "Deployment") in deployments:
                replicasets.add(rs["metadata"]["uid"])
            else:
                self.store.delete("replicasets", rs["metadata"]["namespace"], _name(rs))
        live = set()
        for pod in self.store.list("pods"):
            owner = _owner_uid(pod, "ReplicaSet")
            if owner is not None and owner not in replicasets:
                self.store.delete("pods", pod["metadata"]["namespace"], _name(pod))
            else:
                live.add((pod["metadata"]["namespace"], _name(pod)))
        for key in set(self._pod_created) - live:  # a pod made again under the name starts anew
            del self._pod_created[key]

    def _sync_deployment(self, deployment: JsonDict, now: float) -> None:
        uid = deployment["metadata"]["uid"]
        generation = deployment["metadata"].get("generation", 1)
        owned = self._owned(deployment)
        wanted = template_without_hash(deployment["spec"]["template"])
        new = next(
            (rs for rs in owned if template_without_hash(rs["spec"]["template"]) == wanted), None
        )
        rollout = self._rollouts.get(uid)
        if (
            rollout is None or rollout.generation != generation or new is None
            or rollout.new_rs != new["metadata"]["name"]
        ):
            if rollout is not None and any(_name(rs) == rollout.new_rs for rs in owned):
                self._scale(rollout, self._plan(rollout, owned, now), owned, now)  # settle it
            if new is None:
                new = self._create_replicaset(deployment, now)
            self._set_revision(deployment, _name(new))
            owned = self._owned(deployment)
            spec = deployment["spec"]
            surge, max_unavailable = surge_and_unavailable(spec)
            rollout = Rollout(
                generation=generation,
                new_rs=_name(new),
                started=now,
                seconds=self.rollout_seconds,
                desired=spec.get("replicas", 1),
                surge=surge,
                max_unavailable=max_unavailable,
                deadline=spec.get("progressDeadlineSeconds"),
                new_ready=self._ready(next(rs for rs in owned if _name(rs) == _name(new))),
                old_ready={_name(rs): self._ready(rs) for rs in owned if _name(rs) != _name(new)},
            )
            self._rollouts[uid] = rollout
        self._apply(deployment, rollout, now)

    def _owned(self, deployment: JsonDict) -> list[JsonDict]:
        uid = deployment["metadata"]["uid"]
        return [
            rs for rs in self.store.list("replicasets", deployment["metadata"]["namespace"])
            if any(ref.get("uid") == uid and ref.get("controller")
                   for ref in rs["metadata"].get("ownerReferences", []))
        ]

    def _ready(self, rs: JsonDict) -> int:
        if not self._healthy(rs["spec"]["template"]):
            return 0
        return rs.get("status", {}).get("readyReplicas", 0)

    def _create_replicaset(self, deployment: JsonDict, now: float) -> JsonDict:
        metadata, spec = deployment["metadata"], deployment["spec"]
        template = copy.deepcopy(spec["template"])
        pod_hash = template_hash(template)
        template_metadata = template.setdefault("metadata", {})
        labels = {**template_metadata.get("labels", {}), POD_TEMPLATE_HASH: pod_hash}
        template_metadata["labels"] = labels
        selector = copy.deepcopy(spec["selector"])
        selector["matchLabels"] = {**selector.get("matchLabels", {}), POD_TEMPLATE_HASH: pod_hash}
        rs_spec: JsonDict = {"replicas": 0, "selector": selector, "template": template}
        if spec.get("minReadySeconds"):
            rs_spec["minReadySeconds"] = spec["minReadySeconds"]
        replicaset = {
            "metadata": {
                "name": f"{metadata['name']}-{pod_hash}",
                "namespace": metadata["namespace"],
                "uid": self.store.new_uid(),
                "generation": 1,
                "creationTimestamp": rfc3339(now),
                "labels": dict(labels),
                "annotations": {},
                "ownerReferences": [_owner_reference("Deployment", metadata)],
            },
            "spec": rs_spec,
            "status": {"replicas": 0},
        }
        return self.store.put("replicasets", replicaset)

    def _set_revision(self, deployment: JsonDict, new_name: str) -> None:
        """Give the new ReplicaSet the next revision unless it already holds the highest."""
        owned = self._owned(deployment)
        new = next(rs for rs in owned if _name(rs) == new_name)
        newest_other = max((_revision(rs) for rs in owned if _name(rs) != new_name), default=0)
        current = _revision(new)
        if current > newest_other:
            return
        annotations = new["metadata"].setdefault("annotations", {})
        if current:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join([*history, str(current)])
        annotations[REVISION] = str(newest_other + 1)
        self.store.put("replicasets", new)

    def _plan(self, rollout: Rollout, owned: list[JsonDict], now: float) -> _Plan:
        """Replicas and ready pods of each ReplicaSet at `now`, and where the rollout stands."""
        desired, surge = rollout.desired, rollout.surge
        new = next(rs for rs in owned if _name(rs) == rollout.new_rs)
        olds = sorted((rs for rs in owned if rs is not new), key=_revision, reverse=True)
        healthy = self._healthy(new["spec"]["template"])
        start_ready = min(rollout.new_ready, desired) if healthy else 0
        ramp = rollout.seconds if healthy and desired > start_ready else 0.0
        progress = 1.0 if ramp <= 0 else min(1.0, max(0.0, (now - rollout.started) / ramp))
        if not healthy:
            ready_new = 0
        else:
            ready_new = start_ready + math.floor(progress * (desired - start_ready))
        available_old = {
            _name(rs): rollout.old_ready.get(_name(rs), 0)
            if self._healthy(rs["spec"]["template"]) else 0
            for rs in olds
        }
        keep = min(sum(available_old.values()),
                   max(0, desired - rollout.max_unavailable - ready_new))
        replicas = {rollout.new_rs: max(ready_new, min(desired, desired + surge - keep))}
        ready = {rollout.new_rs: ready_new}
        for rs in olds:
            kept = min(keep, available_old[_name(rs)])
            replicas[_name(rs)] = ready[_name(rs)] = kept
            keep -= kept
        if ramp > 0 and ready_new > start_ready:
            last_progress = rollout.started + ramp * (ready_new - start_ready) / (
                desired - start_ready)
        else:
            last_progress = rollout.started
        complete = ready_new == desired and sum(replicas.values()) == desired
        deadline = rollout.deadline
        timed_out_at = None
        if not complete and deadline is not None and now >= last_progress + deadline:
            timed_out_at = last_progress + deadline
        return _Plan(replicas, ready, complete, last_progress, rollout.started + ramp,
                     timed_out_at)

    def _apply(self, deployment: JsonDict, rollout: Rollout, now: float) -> None:
        owned = self._owned(deployment)
        for rs in owned:
            if _name(rs) == rollout.new_rs:
                _copy_annotations(deployment, rs)
                rs["metadata"]["annotations"][DESIRED_REPLICAS] = str(rollout.desired)
                rs["metadata"]["annotations"][MAX_REPLICAS] = str(rollout.desired + rollout.surge)
        plan = self._plan(rollout, owned, now)
        self._scale(rollout, plan, owned, now)
        self._update_deployment(deployment, rollout, plan, owned, now)
        if plan.complete:
            self._cleanup_history(deployment, rollout)

    def _scale(self, rollout: Rollout, plan: _Plan, owned: list[JsonDict], now: float) -> None:
        """Write each ReplicaSet's replicas and status as planned, and its pods."""
        for rs in owned:
            name = _name(rs)
            if rs["spec"].get("replicas") != plan.replicas[name]:
                rs["spec"]["replicas"] = plan.replicas[name]
                rs["metadata"]["generation"] = rs["metadata"].get("generation", 1) + 1
            rs["status"] = _omit_zero({
                "replicas": plan.replicas[name],
                "fullyLabeledReplicas": plan.replicas[name],
                "readyReplicas": plan.ready[name],
                "availableReplicas": plan.ready[name],
                "observedGeneration": rs["metadata"]["generation"],
            }, keep=("replicas",))
            self.store.put_if_changed("replicasets", rs)
            self._sync_pods(rs, plan.ready[name], now)

    def _update_deployment(self, deployment: JsonDict, rollout: Rollout, plan: _Plan,
                           owned: list[JsonDict], now: float) -> None:
        desired = rollout.desired
        total = sum(plan.replicas.values())
        available = sum(plan.ready.values())
        new = next(rs for rs in owned if _name(rs) == rollout.new_rs)
        deployment["metadata"].setdefault("annotations", {})[REVISION] = str(_revision(new))
        old_status = deployment.get("status") or {}
        status = _omit_zero({
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": total,
            "updatedReplicas": plan.replicas[rollout.new_rs],
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(0, total - available),
        })
        conditions = copy.deepcopy(old_status.get("conditions", []))
        since = max(rollout.started, plan.last_progress,
                    self._behaviour_changed if self._behaviour_changed <= now else rollout.started)
        if available >= desired - rollout.max_unavailable:
            _set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", since, since)
        else:
            _set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", since, since)
        rs_name = rollout.new_rs
        if plan.complete:
            _set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                           f'ReplicaSet "{rs_name}" has successfully progressed.',
                           plan.complete_at, rollout.started, refresh=True)
        elif plan.timed_out_at is not None:
            _set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                           f'ReplicaSet "{rs_name}" has timed out progressing.',
                           plan.timed_out_at, plan.timed_out_at, refresh=True)
        else:
            _set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                           f'ReplicaSet "{rs_name}" is progressing.',
                           plan.last_progress, rollout.started, refresh=True)
        status["conditions"] = conditions
        deployment["status"] = status
        self.store.put_if_changed("deployments", deployment)

    def _cleanup_history(self, deployment: JsonDict, rollout: Rollout) -> None:
        limit = deployment["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        idle = sorted(
            (rs for rs in self._owned(deployment)
             if _name(rs) != rollout.new_rs and rs["spec"].get("replicas", 0) == 0),
            key=_revision,
        )
        for rs in idle[: max(0, len(idle) - limit)]:
            self.store.delete("replicasets", rs["metadata"]["namespace"], _name(rs))

    # --- pods (the ReplicaSet controller and the kubelet) ----------------------------------

    def _sync_pods(self, rs: JsonDict, ready: int, now: float) -> None:
        namespace, uid = rs["metadata"]["namespace"], rs["metadata"]["uid"]
        pods = [
            pod for pod in self.store.list("pods", namespace)
            if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences", []))
        ]
        pods.sort(key=lambda pod: self._pod_created.get((namespace, _name(pod)), (0.0, 0)))
        wanted = rs["spec"]["replicas"]
        for pod in pods[wanted:]:
            self.store.delete("pods", namespace, _name(pod))
            self._pod_created.pop((namespace, _name(pod)), None)
        pods = pods[:wanted]
        while len(pods) < wanted:
            pods.append(self._new_pod(rs, now))
        healthy = self._healthy(rs["spec"]["template"])
        for index, pod in enumerate(pods):
            starting = healthy and index >= ready
            pod["status"] = self._pod_status(pod, starting, now)
            self.store.put_if_changed("pods", pod)

    def _new_pod(self, rs: JsonDict, now: float) -> JsonDict:
        self._pod_serial += 1
        serial = self._pod_serial
        metadata, template = rs["metadata"], rs["spec"]["template"]
        seed = f"{metadata['uid']}/{serial}"
        name = f"{metadata['name']}-{name_suffix(seed)}"
        pod_metadata: JsonDict = {
            "name": name,
            "generateName": f"{metadata['name']}-",
            "namespace": metadata["namespace"],
            "uid": self.store.new_uid(),
            "creationTimestamp": rfc3339(now),
            "labels": dict(template["metadata"].get("labels", {})),
            "ownerReferences": [_owner_reference("ReplicaSet", metadata)],
        }
        if template["metadata"].get("annotations"):
            pod_metadata["annotations"] = dict(template["metadata"]["annotations"])
        spec = {**copy.deepcopy(template["spec"]), "nodeName": NODE_NAME}
        ip = f"10.244.{serial // 250}.{serial % 250 + 2}"
        pod = {"metadata": pod_metadata, "spec": spec, "status": {"podIP": ip}}
        self._pod_created[(metadata["namespace"], name)] = (now, serial)
        return pod

    def _pod_status(self, pod: JsonDict, starting: bool, now: float) -> JsonDict:
        metadata = pod["metadata"]
        created, _ = self._pod_created.get((metadata["namespace"], metadata["name"]), (now, 0))
        statuses = [
            self._container_status(pod, container, "starting" if starting
                                   else self.behaviour(container["image"]), created, now)
            for container in pod["spec"]["containers"]
        ]
        ready = all(status["ready"] for status in statuses)
        pending = starting or any(
            status["state"].get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
            for status in statuses
        )
        unready = [status["name"] for status in statuses if not status["ready"]]
        since = rfc3339(created)

        def condition(kind: str, ok: bool) -> JsonDict:
            found: JsonDict = {"type": kind, "status": "True" if ok else "False",
                               "lastTransitionTime": since}
            if not ok and kind in ("Ready", "ContainersReady"):
                found["reason"] = "ContainersNotReady"
                found["message"] = f"containers with unready status: [{' '.join(unready)}]"
            return found

        ip = pod["status"]["podIP"]
        return {
            "phase": "Pending" if pending else "Running",
            "conditions": [
                condition("PodReadyToStartContainers", not starting),
                condition("Initialized", True),
                condition("Ready", ready),
                condition("ContainersReady", ready),
                condition("PodScheduled", True),
            ],
            "hostIP": "10.224.0.4",
            "hostIPs": [{"ip": "10.224.0.4"}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": since,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        }

    def _container_status(self, pod: JsonDict, container: JsonDict, behaviour: str,
                          created: float, now: float) -> JsonDict:
        image, name = container["image"], container["name"]
        status: JsonDict = {"name": name, "image": image, "imageID": "", "ready": False,
                            "restartCount": 0, "started": False}
        if behaviour == "starting":
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif behaviour == "pull-error":
            if now - created < PULL_ERROR_SECONDS:
                status["state"] = {"waiting": {
                    "reason": "ErrImagePull",
                    "message": f'failed to pull and unpack image "{image}": failed to resolve '
                               f'reference "{image}": {image}: not found',
                }}
            else:
                status["state"] = {"waiting": {
                    "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"',
                }}
        elif behaviour == "crash":
            restarts, backoff, last_start = _crash_loop(now - created)
            uid = pod["metadata"]["uid"]
            status.update({
                "imageID": image_id(image),
                "containerID": _container_id(uid, name, restarts),
                "restartCount": restarts,
                "state": {"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {backoff}s restarting failed container={name} "
                               f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}"
                               f"({uid})",
                }},
                "lastState": {"terminated": {
                    "exitCode": 1, "reason": "Error",
                    "startedAt": rfc3339(created + last_start),
                    "finishedAt": rfc3339(created + last_start + 1),
                    "containerID": _container_id(uid, name, restarts),
                }},
            })
        else:
            status.update({
                "imageID": image_id(image),
                "containerID": _container_id(pod["metadata"]["uid"], name, 0),
                "ready": behaviour in HEALTHY,
                "started": True,
                "state": {"running": {"startedAt": rfc3339(created + 1)}},
            })
        return status

    # --- bare pods (created through the API, e.g. Helm's test hooks) -----------------------

    def _sync_bare_pod(self, pod: JsonDict, now: float) -> None:
        metadata = pod["metadata"]
        key = (metadata["namespace"], metadata["name"])
        if key not in self._pod_created:
            self._pod_serial += 1
            self._pod_created[key] = (now, self._pod_serial)
        created, serial = self._pod_created[key]
        pod["spec"].setdefault("nodeName", NODE_NAME)
        ip = pod.get("status", {}).get("podIP") or f"10.244.{serial // 250}.{serial % 250 + 2}"
        pod["status"] = {**pod.get("status", {}), "podIP": ip}
        if pod["spec"].get("restartPolicy") in RUN_TO_COMPLETION:
            pod["status"] = self._run_status(pod, created, now)
        else:
            starting = (self._healthy(pod) and now - created < self.rollout_seconds)
            pod["status"] = self._pod_status(pod, starting, now)
        self.store.put_if_changed("pods", pod)

    def _run_status(self, pod: JsonDict, created: float, now: float) -> JsonDict:
        """A run-to-completion pod: pending, running for `rollout_seconds` (a Job's pod:
        `job_seconds`), then Succeeded or Failed (exit code 1 for crashing and test-failing
        images)."""
        containers = pod["spec"]["containers"]
        behaviours = [self.behaviour(c["image"]) for c in containers]
        running = self._pod_status(pod, False, now)
        owned_by_job = any(ref.get("kind") == "Job"
                           for ref in pod["metadata"].get("ownerReferences") or [])
        finished_at = created + (self.job_seconds if owned_by_job else self.rollout_seconds)
        if "pull-error" in behaviours or "never-ready" in behaviours or now < finished_at:
            if "pull-error" not in behaviours:
                for status in running["containerStatuses"]:
                    status.update(ready=True, started=True, restartCount=0,
                                  state={"running": {"startedAt": rfc3339(created)}})
                    status.pop("lastState", None)
                for condition in running["conditions"]:
                    condition["status"] = "True"
                    condition.pop("reason", None)
                    condition.pop("message", None)
                running["phase"] = "Running"
            return running
        failed = any(b in FAILING_RUNS for b in behaviours)
        uid = pod["metadata"]["uid"]
        for container, status in zip(containers, running["containerStatuses"], strict=True):
            failing = self.behaviour(container["image"]) in FAILING_RUNS
            status.update(ready=False, started=False, state={"terminated": {
                "exitCode": 1 if failing else 0, "reason": "Error" if failing else "Completed",
                "startedAt": rfc3339(created), "finishedAt": rfc3339(finished_at),
                "containerID": _container_id(uid, container["name"], 0),
            }})
            status["imageID"] = image_id(container["image"])
            status["containerID"] = _container_id(uid, container["name"], 0)
            status.pop("lastState", None)
            status["restartCount"] = 0
        for condition in running["conditions"]:
            if condition["type"] in ("Ready", "ContainersReady", "PodReadyToStartContainers"):
                condition.update(status="False", reason="PodCompleted")
                condition.pop("message", None)
        running["phase"] = "Failed" if failed else "Succeeded"
        return running

    def pod_log(self, pod: JsonDict, query: Mapping[str, str]) -> str:
        """The log of a pod's container (`container`, `tailLines` as the API takes them)."""
        containers = pod["spec"]["containers"]
        wanted = query.get("container") or containers[0]["name"]
        container = next((c for c in containers if c["name"] == wanted), None)
        name = pod["metadata"]["name"]
        if container is None:
            raise ApiError(400, "BadRequest",
                           f"container {wanted} is not valid for pod {name}")
        status = next((s for s in pod.get("status", {}).get("containerStatuses", [])
                       if s["name"] == wanted), {})
        waiting = status.get("state", {}).get("waiting", {}).get("reason")
        if waiting and waiting != "CrashLoopBackOff" or not status:
            raise ApiError(400, "BadRequest", f'container "{wanted}" in pod "{name}" is '
                                              f"waiting to start: {waiting or 'PodInitializing'}")
        image = container["image"]
        behaviour = self.behaviour(image)
        lines = [f"starting {image}"]
        if pod["spec"].get("restartPolicy") in RUN_TO_COMPLETION:
            lines.append(f"{name}: checking the release")
            terminated = status.get("state", {}).get("terminated")
            if terminated and terminated["exitCode"]:
                lines += ["GET /healthz: expected 200, got 503", "test failed"]
            elif terminated:
                lines += ["GET /healthz: 200 OK", "test passed"]
        elif behaviour == "crash":
            lines.append("panic: the sandbox made this image crash (exit status 1)")
        else:
            lines.append("listening on :8080")
        tail = query.get("tailLines", "")
        if tail.isdigit():
            lines = lines[-int(tail):] if int(tail) else []
        return "".join(line + "\n" for line in lines)


def check_traffic(errors: float, latency_ms: float) -> None:
    """ValueError unless 0 <= errors <= 1 and 0 <= latency_ms <= MAX_LATENCY_MS (numbers)."""
    for name, value, top in (("errors", errors, 1.0), ("latency_ms", latency_ms, MAX_LATENCY_MS)):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not 0 <= value <= top:
            raise ValueError(f"{name} must be a number from 0 to {top:g}, not {value!r}")


def image_id(image: str) -> str:
    """The runtime's imageID: the repository with the digest (made up when only tagged)."""
    if "@sha256:" in image:
        return image
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        repository = image
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _crash_loop(age: float) -> tuple[int, int, float]:
    """(restartCount, current back-off, start of the last run) of a container crashing at 1 s."""
    restarts, backoff, started = 1, 10, 0.0
    while started + 1 + backoff <= age:
        started += 1 + backoff
        restarts += 1
        backoff = min(backoff * 2, 300)
    return restarts, backoff, started


def _container_id(pod_uid: str, container: str, run: int) -> str:
    return "containerd://" + hashlib.sha256(f"{pod_uid}/{container}/{run}".encode()).hexdigest()


def _owner_reference(kind: str, metadata: JsonDict) -> JsonDict:
    return {"apiVersion": "apps/v1", "kind": kind, "name": metadata["name"],
            "uid": metadata["uid"], "controller": True, "blockOwnerDeletion": True}


def _copy_annotations(deployment: JsonDict, rs: JsonDict) -> None:
    """Copy the Deployment's annotations (change-cause among them) like the real controller."""
    annotations = rs["metadata"].setdefault("annotations", {})
    for key, value in (deployment["metadata"].get("annotations") or {}).items():
        if key not in NOT_COPIED_ANNOTATIONS:
            annotations[key] = value


def _set_condition(conditions: list[JsonDict], kind: str, status: str, reason: str,
                   message: str, updated: float, transitioned: float,
                   refresh: bool = False) -> None:
    """Set a condition, keeping its transition time while its status stays the same."""
    index = next((i for i, c in enumerate(conditions) if c.get("type") == kind), None)
    current = conditions[index] if index is not None else None
    update_time = rfc3339(updated)
    if current is not None and current.get("status") == status and current.get("reason") == reason:
        if not refresh or current.get("lastUpdateTime") == update_time:
            current["message"] = message
            return
    transition_time = rfc3339(transitioned)
    if current is not None and current.get("status") == status:
        transition_time = current.get("lastTransitionTime", transition_time)
    condition = {"type": kind, "status": status, "lastUpdateTime": update_time,
                 "lastTransitionTime": transition_time, "reason": reason, "message": message}
    if index is None:
        conditions.append(condition)
    else:
        conditions[index] = condition


def _omit_zero(values: dict[str, int], keep: tuple[str, ...] = ()) -> JsonDict:
    """Drop zero counts, as the apiserver's `omitempty` does (so readyReplicas may be absent)."""
    return {key: value for key, value in values.items() if value or key in keep}


def _revision(rs: JsonDict) -> int:
    value = (rs["metadata"].get("annotations") or {}).get(REVISION, "0")
    return int(value) if value.isdigit() else 0


def _owner_uid(obj: JsonDict, kind: str) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == kind and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _name(obj: JsonDict) -> str:
    return obj["metadata"]["name"]
