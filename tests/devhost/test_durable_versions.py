"""Orchestration versioning in devhost, the way the Durable Functions host applies it.

Two deployments of one sample app share a task hub: `orders_v1` (host.json defaultVersion
1.0) and `orders_v2` (2.0, whose `order` takes a discount step that 1.0 histories do not
have, behind `context.version`). Each test stops one host and starts the other on the same
data directory, as a deployment does, on a virtual clock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devhost.durable.clock import VirtualClock
from devhost.durable.engine import REJECTED_RETRY
from devhost.durable.store import TaskHubStore
from devhost.durable.versioning import (
    FailureStrategy,
    MatchStrategy,
    VersionPolicy,
    compare_versions,
)
from devhost.host import Host
from devhost.settings import SettingsError, load_host_settings

APPS = Path(__file__).parent / "apps"
V1, V2 = APPS / "orders_v1", APPS / "orders_v2"
MGMT = "/runtime/webhooks/durabletask"
OVERRIDE = "AzureFunctionsJobHost__extensions__durableTask__"


class Deployment:
    """One host serving an app on the shared task hub, with an HTTP session."""

    def __init__(self, host: Host, http: aiohttp.ClientSession, clock: VirtualClock) -> None:
        self.host, self.http, self.clock = host, http, clock

    async def start(self, version: str | None = None, name: str = "order") -> str:
        """Start `name` through the app's starter (the SDK client); its instance id."""
        params = {"version": version} if version else {}
        async with self.http.post(f"{self.host.base_url}/api/start/{name}",
                                  params=params) as response:
            assert response.status == 202, await response.text()
            return (await response.json())["id"]

    async def status(self, instance_id: str, **query: str) -> dict[str, Any]:
        async with self.http.get(f"{self.host.base_url}{MGMT}/instances/{instance_id}",
                                 params=query) as response:
            text = await response.text()
            assert text, f"{instance_id} not found"
            return json.loads(text)

    async def until(self, instance_id: str, check: Callable[[dict[str, Any]], bool],
                    ) -> dict[str, Any]:
        status: dict[str, Any] = {}
        for _ in range(500):
            status = await self.status(instance_id)
            if check(status):
                return status
            await asyncio.sleep(0.01)
        raise AssertionError(f"{instance_id}: never; last status {status}")

    async def waiting(self, instance_id: str) -> dict[str, Any]:
        return await self.until(instance_id, lambda s: s["customStatus"] == "waiting")

    async def done(self, instance_id: str) -> dict[str, Any]:
        return await self.until(instance_id,
                                lambda s: s["runtimeStatus"] in ("Completed", "Failed"))

    async def go(self, instance_id: str) -> None:
        url = f"{self.host.base_url}{MGMT}/instances/{instance_id}/raiseEvent/go"
        async with self.http.post(url, json={}) as response:
            assert response.status == 202, await response.text()

    async def history(self, instance_id: str) -> list[dict[str, Any]]:
        return (await self.status(instance_id, showHistory="true"))["historyEvents"]

    async def settle(self) -> None:
        """Let the dispatcher look at whatever is due now."""
        for _ in range(20):
            await asyncio.sleep(0.01)


Phase = Callable[[Deployment], Awaitable[Any]]


def deploy(app: Path, data_dir: Path, clock: VirtualClock, phase: Phase) -> Any:
    """Serve `app` on `data_dir` for the length of `phase`, then stop the host."""

    async def main() -> Any:
        host = Host(app, port=0, data_dir=data_dir, clock=clock)
        await host.start()
        try:
            async with aiohttp.ClientSession() as http:
                return await phase(Deployment(host, http, clock))
        finally:
            await host.stop()

    return asyncio.run(main())


def later(clock: VirtualClock, seconds: float = 60) -> VirtualClock:
    """The clock of the next deployment: time went on while it rolled out."""
    return VirtualClock(clock.now() + timedelta(seconds=seconds))


def test_a_waiting_instance_keeps_its_version_and_old_path_after_the_app_moves_to_2_0(
        tmp_path: Path) -> None:
    clock = VirtualClock()

    async def under_1_0(app: Deployment) -> str:
        old = await app.start()
        status = await app.waiting(old)
        assert status["version"] == "1.0"
        return old

    old = deploy(V1, tmp_path, clock, under_1_0)

    async def under_2_0(app: Deployment) -> tuple[dict[str, Any], dict[str, Any], str]:
        await app.go(old)
        finished = await app.done(old)
        new = await app.start()
        await app.waiting(new)
        await app.go(new)
        return finished, await app.done(new), new

    finished, fresh, new = deploy(V2, tmp_path, later(clock), under_2_0)
    assert finished["runtimeStatus"] == "Completed", finished["output"]  # no NonDeterminismError
    assert finished["version"] == "1.0"
    # context.version stayed 1.0, so the recorded steps replayed on the old path; its
    # children were started by the 2.0 app: the default one is 2.0, the pinned one 0.9.
    assert finished["output"] == {"version": "1.0", "steps": ["validate", "pay"],
                                  "child": "2.0", "pinned": "0.9"}
    assert fresh["runtimeStatus"] == "Completed", fresh["output"]
    assert fresh["version"] == "2.0"
    assert fresh["output"] == {"version": "2.0", "steps": ["validate", "discount", "pay less"],
                               "child": "2.0", "pinned": "0.9"}


def test_without_the_version_branch_the_same_change_breaks_the_waiting_instance(
        tmp_path: Path) -> None:
    """The control for the test above: v2's change does not replay over a 1.0 history."""
    clock = VirtualClock()

    async def under_1_0(app: Deployment) -> str:
        instance = await app.start()
        await app.waiting(instance)
        return instance

    instance = deploy(V1, tmp_path, clock, under_1_0)

    async def started_as_2_0(app: Deployment) -> dict[str, Any]:
        # Rewrite the recorded version, as if the branch had not looked at it.
        store = app.host.engine.store
        with store.transaction() as db:
            db.execute("UPDATE history SET event = replace(event, '\"Version\": \"1.0\"',"
                       " '\"Version\": \"2.0\"') WHERE instance_id = ?", (instance,))
        await app.go(instance)
        return await app.done(instance)

    broken = deploy(V2, tmp_path, later(clock), started_as_2_0)
    assert broken["runtimeStatus"] == "Failed"
    assert "NonDeterminismError" in broken["output"]


def test_a_2_0_instance_is_rejected_by_a_1_0_app_and_left_for_a_2_0_one(tmp_path: Path) -> None:
    clock = VirtualClock()

    async def under_1_0(app: Deployment) -> str:
        newer = await app.start(version="2.0")
        await app.settle()
        status = await app.status(newer)
        assert status["runtimeStatus"] == "Pending" and status["version"] == "2.0"
        assert await app.history(newer) == []  # nothing ran, nothing was recorded
        clock.advance(REJECTED_RETRY + timedelta(seconds=1))  # looked at again: still not
        await app.settle()
        assert (await app.status(newer))["runtimeStatus"] == "Pending"
        return newer

    newer = deploy(V1, tmp_path, clock, under_1_0)

    async def under_2_0(app: Deployment) -> dict[str, Any]:
        await app.waiting(newer)
        await app.go(newer)
        return await app.done(newer)

    done = deploy(V2, tmp_path, later(clock), under_2_0)
    assert done["runtimeStatus"] == "Completed", done["output"]
    assert done["output"]["steps"] == ["validate", "discount", "pay less"]


def test_a_2_0_instance_is_failed_by_a_1_0_app_set_to_fail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OVERRIDE + "versionFailureStrategy", "Fail")  # an app setting override

    async def under_1_0(app: Deployment) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        newer = await app.start(version="2.0")
        failed = await app.done(newer)
        return failed, await app.history(newer)

    failed, history = deploy(V1, tmp_path, VirtualClock(), under_1_0)
    assert failed["runtimeStatus"] == "Failed"
    assert failed["output"] == ("VersionMismatch: orchestration version '2.0' must not be newer"
                                " than this app's defaultVersion '1.0' (versionMatchStrategy"
                                " CurrentOrOlder)")
    kinds = [e["EventType"] for e in history]
    assert "TaskScheduled" not in kinds and kinds[-1] == "ExecutionFailed"


def test_strict_leaves_an_older_instance_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = VirtualClock()

    async def under_1_0(app: Deployment) -> str:
        instance = await app.start()
        await app.waiting(instance)
        return instance

    instance = deploy(V1, tmp_path, clock, under_1_0)
    monkeypatch.setenv(OVERRIDE + "versionMatchStrategy", "Strict")

    async def strict_2_0(app: Deployment) -> dict[str, Any]:
        await app.go(instance)
        await app.settle()
        return await app.status(instance)

    status = deploy(V2, tmp_path, later(clock), strict_2_0)
    assert status["runtimeStatus"] == "Running" and status["customStatus"] == "waiting"


def test_continue_as_new_keeps_the_version(tmp_path: Path) -> None:
    async def under_2_0(app: Deployment) -> dict[str, Any]:
        return await app.done(await app.start(version="1.5", name="rounds"))

    done = deploy(V2, tmp_path, VirtualClock(), under_2_0)
    assert done["runtimeStatus"] == "Completed" and done["output"] == "1.5"


def test_a_task_hub_from_before_versioning_opens_and_its_instances_run(tmp_path: Path) -> None:
    path = tmp_path / "OrdersHub.sqlite"
    with sqlite3.connect(path) as db:  # the instances table as devhost wrote it before
        db.execute("CREATE TABLE instances (instance_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
                   " execution_id TEXT NOT NULL, status TEXT NOT NULL, input TEXT, output TEXT,"
                   " custom_status TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
                   " parent_instance_id TEXT, parent_execution_id TEXT, parent_task_id INTEGER)")
        db.execute("INSERT INTO instances VALUES ('old', 'order', 'e1', 'Running', NULL, NULL,"
                   " NULL, 't', 't', NULL, NULL, NULL)")
    store = TaskHubStore(path)
    try:
        old = store.instance("old")
    finally:
        store.close()
    assert old is not None and old.version is None
    assert VersionPolicy("1.0").admits(old.version)  # unversioned is older than any version


@pytest.mark.parametrize(("left", "right", "order"), [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("1.10", "1.9", 1), ("1.0", "1.0.0", -1),
    ("", None, 0), ("", "1.0", -1), ("1.0", "", 1),
    ("2025-01-01", "2025-02-01", -1), ("V1-beta", "v1-BETA", 0), ("10", "9", -1),
])
def test_versions_compare_by_the_hosts_rules(left: str | None, right: str | None,
                                             order: int) -> None:
    assert compare_versions(left, right) == order


def test_policies_admit_as_documented() -> None:
    current = VersionPolicy("1.1")
    assert current.admits("1.0") and current.admits("1.1") and current.admits(None)
    assert not current.admits("1.2")
    strict = VersionPolicy("1.1", MatchStrategy.STRICT)
    assert strict.admits("1.1") and not strict.admits("1.0") and not strict.admits("")
    assert VersionPolicy("1.0", MatchStrategy.NONE).admits("9.9")
    assert current.version_for(None) == "1.1" and current.version_for("0.9") == "0.9"
    assert VersionPolicy().version_for(None) == ""


def test_host_json_versioning_settings_are_read_and_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_host_settings(V1).versioning == VersionPolicy("1.0")
    assert load_host_settings(tmp_path).versioning == VersionPolicy()  # no host.json
    monkeypatch.setenv(OVERRIDE + "defaultVersion", "1.1")
    monkeypatch.setenv(OVERRIDE.lower() + "versionfailurestrategy", "fail")
    assert load_host_settings(V1).versioning == VersionPolicy(
        "1.1", MatchStrategy.CURRENT_OR_OLDER, FailureStrategy.FAIL)
    monkeypatch.setenv(OVERRIDE + "versionMatchStrategy", "Newest")
    with pytest.raises(SettingsError, match="versionMatchStrategy must be one of None, Strict,"
                                            " CurrentOrOlder, got 'Newest'"):
        load_host_settings(V1)
    monkeypatch.delenv(OVERRIDE + "versionMatchStrategy")
    monkeypatch.delenv(OVERRIDE + "defaultVersion")
    (tmp_path / "host.json").write_text('{"extensions": {"durableTask": {"defaultVersion": 2}}}')
    with pytest.raises(SettingsError, match="defaultVersion must be a string or null, got 2"):
        load_host_settings(tmp_path)
