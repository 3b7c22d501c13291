"""The durable engine: runs orchestrations and activities over a SQLite task hub.

One dispatcher on the event loop takes instances with due messages, replays each
through the SDK (`replay.run_episode`) and commits the episode in one
transaction; activities run concurrently (bounded) and commit their results as
messages. Work survives a killed process: on start, queued activities run again
(at-least-once, like the real service) and due timers fire.
Does not speak HTTP: `management.py` maps the client API onto this class.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.durable_functions.models.utils import http_utils

from ..invocation_log import log_invocation
from . import history as h
from .clock import Clock, SystemClock
from .replay import Episode, NewTask, run_episode
from .store import TERMINAL, ActivityWork, Instance, Message, TaskHubStore
from .versioning import FailureStrategy, VersionPolicy

log = logging.getLogger("devhost.durable")

ActivityRunner = Callable[[str, str | None], Awaitable[str]]
_HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,49}$")
_IMMEDIATE = 0.0
# Rejected work (an instance newer than this app) is looked at again after this long.
REJECTED_RETRY = timedelta(seconds=5)


class DurableError(Exception):
    """A client request the engine refuses; `status` is the HTTP status that fits."""

    status = 400


class InstanceNotFound(DurableError):
    status = 404


class InstanceGone(DurableError):
    status = 410


class OrchestratorNotFound(DurableError):
    status = 404


class InstanceConflict(DurableError):
    status = 409


class Engine:
    """Durable Functions backend for devhost, persisted under `data_dir`."""

    def __init__(self, data_dir: Path, *, hub_name: str,
                 orchestrators: Mapping[str, Callable[..., Any]], run_activity: ActivityRunner,
                 clock: Clock | None = None, max_activities: int = 10,
                 max_orchestrators: int = 10, versioning: VersionPolicy | None = None) -> None:
        if not _HUB_NAME.match(hub_name):
            raise ValueError(f"durable hub name {hub_name!r} must be 3-50 letters and digits,"
                             " starting with a letter (host.json extensions.durableTask.hubName)")
        if max_activities < 1 or max_orchestrators < 1:
            raise ValueError("maxConcurrentActivityFunctions and maxConcurrentOrchestratorFunctions"
                             " must be at least 1")
        self.hub_name = hub_name
        self.data_dir = Path(data_dir)
        self.orchestrators = dict(orchestrators)
        self.clock: Clock = clock or SystemClock()
        self.versioning = versioning or VersionPolicy()
        self._rejected: set[str] = set()  # instances whose rejection was logged
        self._run_activity = run_activity
        self._max_activities = max_activities
        self._batch = max(max_orchestrators, 1) * 8
        self._store: TaskHubStore | None = None
        self._lock_file: Any = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._histories: dict[str, list[dict[str, Any]]] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._stopping = False

    # --- life cycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._store is not None and not self._stopping

    @property
    def store(self) -> TaskHubStore:
        if self._store is None:
            raise RuntimeError("the durable engine is not started")
        return self._store

    async def start(self) -> None:
        """Open the task hub and start dispatching (resuming whatever was in flight)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.data_dir / f"{self.hub_name}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as busy:
            self._lock_file.close()
            raise RuntimeError(f"task hub {self.hub_name} in {self.data_dir} is in use by"
                               " another devhost process") from busy
        self._store = TaskHubStore(self.data_dir / f"{self.hub_name}.sqlite")
        self._stopping = False
        self._wake = asyncio.Event()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="durable-dispatcher")

    async def stop(self) -> None:
        """Stop dispatching; unfinished activities stay queued and run again on next start."""
        self._stopping = True
        tasks = [t for t in [self._dispatcher, *self._inflight.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        self._dispatcher = None
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()
        self._waiters.clear()
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        # The SDK's client keeps one process-wide HTTP session bound to this event loop; the
        # real worker never changes loops, but an in-process devhost may be restarted in another.
        await http_utils._close_session()

    # --- client API --------------------------------------------------------------------------

    def start_new(self, name: str, instance_id: str | None = None,
                  input_json: str | None = None, version: str | None = None) -> str:
        """Create an instance of orchestrator `name` (of `version`, else defaultVersion)."""
        if name not in self.orchestrators:
            raise OrchestratorNotFound(f"orchestrator function {name!r} does not exist")
        instance_id = instance_id or uuid.uuid4().hex
        _check_instance_id(instance_id)
        _check_json(input_json, "orchestration input")
        if version is not None:
            _check_version(version)
        existing = self.store.instance(instance_id)
        if existing is not None and not existing.terminal:
            raise InstanceConflict(f"instance {instance_id!r} already exists and is "
                                   f"{existing.status}")
        with self.store.transaction():
            self._create_instance(instance_id, name, input_json,
                                  version=self.versioning.version_for(version))
        self._histories.pop(instance_id, None)
        self._wake.set()
        return instance_id

    def raise_event(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        """Deliver an external event (kept until the orchestrator waits for it)."""
        if not event_name:
            raise DurableError("event name is empty")
        _check_json(data_json, "event data")
        self._active(instance_id)
        now = self.clock.now()
        with self.store.transaction():
            self.store.send(instance_id, "event", h.event_raised(now, event_name, data_json),
                            visible_at=_IMMEDIATE)
        self._wake.set()

    def terminate(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, "terminate", reason)

    def suspend(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, "suspend", reason)

    def resume(self, instance_id: str, reason: str) -> None:
        self._control(instance_id, "resume", reason)

    def status(self, instance_id: str, *, show_input: bool = True, show_history: bool = False,
               show_history_output: bool = False) -> dict[str, Any] | None:
        """The instance's status as the Durable HTTP API shows it, or None."""
        instance = self.store.instance(instance_id)
        if instance is None:
            return None
        status = _status_json(instance, show_input)
        if show_history:
            status["historyEvents"] = [
                _public_event(e, show_history_output) for e in self.store.history(instance_id)]
        return status

    def query(self, *, created_from: datetime | None = None, created_to: datetime | None = None,
              statuses: Iterable[str] = (), prefix: str | None = None,
              show_input: bool = False) -> list[dict[str, Any]]:
        instances = self.store.query(
            created_from=created_from and h.iso(created_from),
            created_to=created_to and h.iso(created_to), statuses=statuses, prefix=prefix)
        return [_status_json(i, show_input) for i in instances]

    def purge(self, instance_ids: Iterable[str]) -> int:
        """Delete finished instances with their history; running ones are left alone."""
        ids = [i for i in instance_ids
               if (inst := self.store.instance(i)) is not None and inst.terminal]
        with self.store.transaction():
            deleted = self.store.purge(ids)
        for instance_id in ids:
            self._histories.pop(instance_id, None)
        return deleted

    def purge_by(self, *, created_from: datetime | None = None,
                 created_to: datetime | None = None, statuses: Iterable[str] = ()) -> int:
        wanted = [s for s in statuses if s in TERMINAL] if statuses else list(TERMINAL)
        instances = self.store.query(created_from=created_from and h.iso(created_from),
                                     created_to=created_to and h.iso(created_to),
                                     statuses=wanted)
        return self.purge(i.instance_id for i in instances)

    async def wait_for(self, instance_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the instance ends (Completed, Failed, Terminated); return its status."""
        instance = self.store.instance(instance_id)
        if instance is None:
            raise InstanceNotFound(f"no instance with id {instance_id!r}")
        if not instance.terminal:
            future = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(instance_id, []).append(future)
            await asyncio.wait_for(future, timeout)
        status = self.status(instance_id)
        assert status is not None
        return status

    # --- dispatching -------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            try:
                busy = await self._dispatch_once()
            except Exception:  # e.g. a locked or full disk: keep the host up, try again
                log.exception("durable dispatcher error; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            if busy:
                await asyncio.sleep(0)
            else:
                await self._idle(self.store.next_due(self.clock.now().timestamp()))

    async def _dispatch_once(self) -> bool:
        """Run every due episode and start queued activities; True when episodes ran.

        Yields to the event loop after each episode, so HTTP requests and activity results
        are served between episodes instead of after the whole batch."""
        self._wake.clear()
        now = self.clock.now()
        ready = self.store.ready_instances(now.timestamp(), self._batch)
        for instance_id in ready:
            self._run_episode_safely(instance_id, now)
            await asyncio.sleep(0)
            if self._stopping:
                return False
        self._start_activities()
        return bool(ready)

    async def _idle(self, next_due: float | None) -> None:
        waits = [asyncio.ensure_future(self._wake.wait())]
        if next_due is not None:
            when = datetime.fromtimestamp(next_due, UTC)
            waits.append(asyncio.ensure_future(self.clock.sleep_until(when)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def _start_activities(self) -> None:
        free = self._max_activities - len(self._inflight)
        for work in self.store.pending_activities(set(self._inflight), free):
            self._inflight[work.id] = asyncio.create_task(self._activity(work))

    async def _activity(self, work: ActivityWork) -> None:
        try:
            result = await self._run_activity(work.name, work.input)
            _check_json(result, f"activity {work.name!r} result")
            outcome = h.task_completed(self.clock.now(), work.task_id, result)
        except asyncio.CancelledError:
            raise
        except Exception as failure:
            reason = f"Activity function '{work.name}' failed: {type(failure).__name__}: {failure}"
            outcome = h.task_failed(self.clock.now(), work.task_id, reason)
        finally:
            self._inflight.pop(work.id, None)
        if self._stopping or self._store is None:
            return
        with self.store.transaction():
            if self.store.finish_activity(work.id):
                self.store.send(work.instance_id, "event", outcome, visible_at=_IMMEDIATE,
                                execution_id=work.execution_id)
        self._wake.set()

    def _run_episode_safely(self, instance_id: str, now: datetime) -> None:
        try:
            self._run_episode(instance_id, now)
        except Exception as failure:  # a bug or a broken hub: fail the instance, keep serving
            log.exception("durable engine error on instance %s", instance_id)
            self._histories.pop(instance_id, None)
            with self.store.transaction():
                self.store.delete_messages(
                    m.id for m in self.store.due_messages(instance_id, now.timestamp()))
                if (instance := self.store.instance(instance_id)) and not instance.terminal:
                    self._end(instance, now, "Failed", json.dumps(f"devhost error: {failure}"))

    def _run_episode(self, instance_id: str, now: datetime) -> None:
        messages = self.store.due_messages(instance_id, now.timestamp())
        instance = self.store.instance(instance_id)
        if instance is None or instance.terminal:
            with self.store.transaction():  # late results for a finished or purged instance
                self.store.delete_messages(m.id for m in messages)
            return
        if not self.versioning.admits(instance.version) \
                and self.versioning.failure is FailureStrategy.REJECT:
            self._reject(instance, now)
            return
        events, consumed, instance = self._take_messages(instance, messages, now)
        if instance.terminal or not events:
            return
        started = time.perf_counter()
        error = self._replay(instance, events, consumed, now)
        log_invocation(instance.name, "orchestrator", (time.perf_counter() - started) * 1000,
                       error)

    def _take_messages(self, instance: Instance, messages: list[Message],
                       now: datetime) -> tuple[list[dict[str, Any]], list[int], Instance]:
        """Apply control messages; return the history events this episode adds."""
        events: list[dict[str, Any]] = []
        consumed: list[int] = []
        status = instance.status
        for message in messages:
            if message.kind == "terminate":
                with self.store.transaction():
                    self.store.delete_messages(m.id for m in messages)
                    self._end(instance, now, "Terminated", json.dumps(message.body))
                return [], [], replace(instance, status="Terminated")
            if message.kind in ("suspend", "resume"):
                status = "Suspended" if message.kind == "suspend" else "Running"
            elif status == "Suspended":
                continue  # held until resumed
            elif message.execution_id in (None, instance.execution_id):
                events.append(message.body)
            # else: a result for an execution that has since continued as new
            consumed.append(message.id)
        instance = replace(instance, status=status)
        if not events:
            with self.store.transaction():
                self.store.delete_messages(consumed)
                self.store.update_instance(instance.instance_id, status=status,
                                           updated_at=h.iso(now))
        return events, consumed, instance

    def _replay(self, instance: Instance, events: list[dict[str, Any]], consumed: list[int],
                now: datetime) -> str | None:
        """Run one episode and commit it; return the error that failed the instance, if any."""
        past = self._history(instance.instance_id)
        fresh = [h.event(h.EventType.ORCHESTRATOR_STARTED, now), *events]
        handle = self.orchestrators.get(instance.name)
        if not self.versioning.admits(instance.version):  # versionFailureStrategy Fail
            episode = Episode(done=True, error=self.versioning.refusal(instance.version))
        elif handle is None:
            episode = Episode(done=True, error=f"orchestrator function {instance.name!r} does"
                                               " not exist in this app")
        else:
            episode = run_episode(
                getattr(handle, "orchestrator_function", handle),
                instance_id=instance.instance_id, parent_instance_id=instance.parent_instance_id,
                input_json=instance.input, history=past + fresh, new_from=len(past), now=now,
                input_type=getattr(handle, "_df_input_type", None))
        with self.store.transaction():
            self.store.delete_messages(consumed)
            self._commit_episode(instance, episode, past, fresh, now)
        return episode.error

    def _commit_episode(self, instance: Instance, episode: Episode,
                        past: list[dict[str, Any]], fresh: list[dict[str, Any]],
                        now: datetime) -> None:
        store = self.store
        iid = instance.instance_id
        if episode.continue_as_new:
            self._continue_as_new(instance, episode, now)
            return
        if not episode.done:
            fresh.extend(self._schedule(instance, task, now) for task in episode.new_tasks)
        fresh.append(h.event(h.EventType.ORCHESTRATOR_COMPLETED, now))
        if episode.done:
            kind = (h.EventType.EXECUTION_FAILED if episode.failed
                    else h.EventType.EXECUTION_COMPLETED)
            result = json.dumps(episode.error) if episode.failed else episode.output_json
            fresh.append(h.event(kind, now, Result=result))
        store.append_history(iid, len(past), fresh)
        if episode.done:
            self._histories.pop(iid, None)
            status = "Failed" if episode.failed else "Completed"
            store.update_instance(iid, custom_status=episode.custom_status_json)
            self._end(instance, now, status, result)
            return
        self._histories[iid] = past + fresh
        store.cancel_timers(iid, episode.cancelled_timers)
        status = "Suspended" if instance.status == "Suspended" else "Running"
        store.update_instance(iid, status=status, custom_status=episode.custom_status_json,
                              updated_at=h.iso(now))

    def _schedule(self, instance: Instance, task: NewTask, now: datetime) -> dict[str, Any]:
        """Queue the work for a new task; return its scheduling history event."""
        iid, execution = instance.instance_id, instance.execution_id
        if task.kind == "activity":
            self.store.add_activity(iid, execution, task.task_id, task.name, task.input_json)
            return h.event(h.EventType.TASK_SCHEDULED, now, task.task_id, Name=task.name,
                           Input=task.input_json)
        if task.kind == "timer":
            fire_at = (task.fire_at or now).astimezone(UTC)
            if not task.cancelled:
                self.store.send(iid, "timer", h.timer_fired(now, task.task_id, fire_at),
                                visible_at=fire_at.timestamp(), execution_id=execution,
                                timer_id=task.task_id)
            return h.event(h.EventType.TIMER_CREATED, now, task.task_id, FireAt=h.iso(fire_at))
        self._start_child(instance, task, now)
        return h.event(h.EventType.SUB_ORCHESTRATION_CREATED, now, task.task_id, Name=task.name,
                       Input=task.input_json, InstanceId=task.instance_id)

    def _start_child(self, parent: Instance, task: NewTask, now: datetime) -> None:
        child_id = task.instance_id or ""
        existing = self.store.instance(child_id)
        problem = None
        if task.name not in self.orchestrators:
            problem = f"orchestrator function {task.name!r} does not exist"
        elif existing is not None and not existing.terminal:
            problem = f"instance {child_id!r} already exists and is {existing.status}"
        if problem:
            failure = h.sub_orchestration_failed(now, task.task_id, problem)
            self.store.send(parent.instance_id, "event", failure, visible_at=_IMMEDIATE,
                            execution_id=parent.execution_id)
            return
        self._histories.pop(child_id, None)
        # Like the host: the caller's explicit version, else this app's defaultVersion (not
        # the parent's: a child started by new code after a deployment is of the new version).
        self._create_instance(child_id, task.name, task.input_json, parent=parent,
                              parent_task_id=task.task_id,
                              version=self.versioning.version_for(task.version))

    def _create_instance(self, instance_id: str, name: str, input_json: str | None, *,
                         parent: Instance | None = None, parent_task_id: int | None = None,
                         version: str = "") -> None:
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        self.store.purge([instance_id])
        self.store.put_instance(Instance(
            instance_id=instance_id, name=name, execution_id=execution_id, status="Pending",
            input=input_json, output=None, custom_status=None, created_at=h.iso(now),
            updated_at=h.iso(now), parent_instance_id=parent and parent.instance_id,
            parent_execution_id=parent and parent.execution_id, parent_task_id=parent_task_id,
            version=version))
        self.store.send(instance_id, "event",
                        h.execution_started(now, name, input_json,
                                            parent and parent.instance_id, version),
                        visible_at=_IMMEDIATE, execution_id=execution_id)

    def _continue_as_new(self, instance: Instance, episode: Episode, now: datetime) -> None:
        iid = instance.instance_id
        execution_id = uuid.uuid4().hex
        self._histories.pop(iid, None)
        self.store.clear_history(iid)
        self.store.drop_pending_work(iid)
        self.store.update_instance(
            iid, execution_id=execution_id, status="Running", input=episode.continue_input_json,
            output=None, custom_status=episode.custom_status_json, updated_at=h.iso(now))
        self.store.send(iid, "event",
                        h.execution_started(now, instance.name, episode.continue_input_json,
                                            instance.parent_instance_id, instance.version or ""),
                        visible_at=_IMMEDIATE, execution_id=execution_id)

    def _reject(self, instance: Instance, now: datetime) -> None:
        """Leave an instance this app may not run for a worker of its version, like the host's
        `Reject`: nothing changes, its messages are looked at again later."""
        if instance.instance_id not in self._rejected:
            self._rejected.add(instance.instance_id)
            log.warning("instance %s not run here, left for a worker of its version: %s",
                        instance.instance_id, self.versioning.refusal(instance.version))
        with self.store.transaction():
            self.store.defer_messages(instance.instance_id, now.timestamp(),
                                      (now + REJECTED_RETRY).timestamp())

    def _end(self, instance: Instance, now: datetime, status: str, output: str | None) -> None:
        """Record a final status, drop queued work, tell the parent and any waiters."""
        iid = instance.instance_id
        self.store.drop_pending_work(iid)
        self.store.update_instance(iid, status=status, output=output, updated_at=h.iso(now))
        self._histories.pop(iid, None)
        if instance.parent_instance_id and instance.parent_task_id is not None:
            if status == "Completed":
                note = h.sub_orchestration_completed(now, instance.parent_task_id, output)
            else:
                detail = json.loads(output) if output else status
                note = h.sub_orchestration_failed(
                    now, instance.parent_task_id,
                    f"Sub-orchestration '{instance.name}' ({iid}) {status.lower()}: {detail}")
            self.store.send(instance.parent_instance_id, "event", note, visible_at=_IMMEDIATE,
                            execution_id=instance.parent_execution_id)
        for future in self._waiters.pop(iid, []):
            if not future.done():
                future.set_result(None)
        self._wake.set()

    # --- helpers -----------------------------------------------------------------------------

    def _history(self, instance_id: str) -> list[dict[str, Any]]:
        cached = self._histories.get(instance_id)
        if cached is None:
            cached = self.store.history(instance_id)
        return list(cached)

    def _active(self, instance_id: str) -> Instance:
        instance = self.store.instance(instance_id)
        if instance is None:
            raise InstanceNotFound(f"no instance with id {instance_id!r}")
        if instance.terminal:
            raise InstanceGone(f"instance {instance_id!r} is {instance.status}")
        return instance

    def _control(self, instance_id: str, kind: str, reason: str) -> None:
        self._active(instance_id)
        with self.store.transaction():
            self.store.send(instance_id, kind, reason, visible_at=_IMMEDIATE)
        self._wake.set()


def _check_instance_id(instance_id: str) -> None:
    if len(instance_id) > 256 or any(c in instance_id for c in "/\\#?") or \
            any(ord(c) < 32 for c in instance_id):
        raise DurableError("instance id must be at most 256 characters without / \\ # ? or"
                           " control characters")


def _check_version(version: str) -> None:
    if len(version) > 100 or any(ord(c) < 32 for c in version):
        raise DurableError("version must be at most 100 characters without control characters")


def _check_json(text: str | None, what: str) -> None:
    if text is None:
        return
    try:
        json.loads(text)
    except ValueError as bad:
        raise DurableError(f"{what} is not valid JSON: {bad}") from bad


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _status_json(instance: Instance, show_input: bool) -> dict[str, Any]:
    version = {"version": instance.version} if instance.version else {}  # omitted when none
    return {
        "name": instance.name,
        "instanceId": instance.instance_id,
        **version,
        "runtimeStatus": instance.status,
        "input": _loads(instance.input) if show_input else None,
        "customStatus": _loads(instance.custom_status),
        "output": _loads(instance.output),
        "createdTime": instance.created_at,
        "lastUpdatedTime": instance.updated_at,
    }


def _public_event(event: dict[str, Any], with_output: bool) -> dict[str, Any]:
    kind = h.EventType(event["EventType"]).name.title().replace("_", "")
    shown: dict[str, Any] = {"EventType": kind, "Timestamp": event["Timestamp"]}
    for key in ("Name", "TaskScheduledId", "TimerId", "FireAt", "InstanceId", "Reason"):
        if key in event:
            shown[key] = event[key]
    if with_output:
        for key in ("Input", "Result"):
            if key in event:
                shown[key] = _loads(event[key])
    return shown

