"""The durable engine end to end: the sample app served by an in-process devhost.

Orchestrations are started and driven over real HTTP (the SDK's client binding
and the management API) with a virtual clock, so 72-hour timers and retry
back-offs pass in an instant.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from devhost.durable.clock import VirtualClock
from devhost.host import Host

APP = Path(__file__).parent / "apps" / "durable_app"
MGMT = "/runtime/webhooks/durabletask"


class Harness:
    """A started Host on a virtual clock plus an HTTP session to talk to it."""

    def __init__(self, host: Host, clock: VirtualClock, http: aiohttp.ClientSession) -> None:
        self.host, self.clock, self.http = host, clock, http

    @property
    def engine(self):
        assert self.host.engine is not None
        return self.host.engine

    async def start(self, name: str, payload: Any = None, instance_id: str | None = None) -> str:
        """Start through the app's HTTP starter (SDK client binding); return the instance id."""
        path = f"/api/start/{name}" + (f"/{instance_id}" if instance_id else "")
        async with self.http.post(self.host.base_url + path, json=payload) as response:
            assert response.status == 202, await response.text()
            links = await response.json()
            assert response.headers["Location"] == links["statusQueryGetUri"]
            return links["id"]

    async def status(self, instance_id: str, **query: str) -> tuple[int, Any]:
        url = f"{self.host.base_url}{MGMT}/instances/{instance_id}"
        async with self.http.get(url, params=query) as response:
            body = await response.text()
            return response.status, json.loads(body) if body else None

    async def until(self, instance_id: str, *statuses: str, advance: float = 0) -> dict:
        """Poll the status URL until the instance is in one of `statuses`."""
        for _ in range(400):
            _, status = await self.status(instance_id)
            if status and status["runtimeStatus"] in statuses:
                return status
            if advance:
                self.clock.advance(advance)
            await asyncio.sleep(0.01)
        raise AssertionError(f"{instance_id} never reached {statuses}: {status}")

    async def waiting(self, instance_id: str) -> None:
        """Until the instance has run its first episode and waits."""
        await self.until(instance_id, "Running")
        await asyncio.sleep(0.05)

    async def post(self, path: str, data: Any = None, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.post(self.host.base_url + path, data=data, **kwargs) as response:
            body = await response.text()
            try:
                return response.status, json.loads(body) if body else None
            except ValueError:
                return response.status, body


def scenario(test: Callable[[Harness], Awaitable[None]]) -> Callable[[Path], None]:
    """Run `test` against a fresh devhost serving the sample app."""

    def run(tmp_path: Path) -> None:
        async def main() -> None:
            clock = VirtualClock()
            host = Host(APP, port=0, data_dir=tmp_path / "data", clock=clock)
            await host.start()
            try:
                async with aiohttp.ClientSession() as http:
                    await test(Harness(host, clock, http))
            finally:
                await host.stop()

        asyncio.run(main())

    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


@scenario
async def test_chain_of_sync_and_async_activities_completes(h: Harness) -> None:
    instance_id = await h.start("chain")
    status = await h.until(instance_id, "Completed")
    assert status["output"] == ["Hello a", "Hello async b", "Hello c"]
    async with h.http.get(f"{h.host.base_url}/api/status/{instance_id}") as response:
        seen_by_sdk = await response.json()
    assert seen_by_sdk["runtimeStatus"] == "Completed"
    kinds = [e["EventType"] for e in seen_by_sdk["history"]]
    assert kinds.count("TaskScheduled") == 3 and kinds.count("TaskCompleted") == 3
    assert kinds[-1] == "ExecutionCompleted"


@scenario
async def test_fan_out_is_bounded_by_max_concurrent_activities(h: Harness) -> None:
    instance_id = await h.start("fan_out", 9)
    status = await h.until(instance_id, "Completed")
    assert status["output"]["results"] == [n * n for n in range(9)]
    assert status["output"]["peak"] == 3  # host.json maxConcurrentActivityFunctions


@scenario
async def test_activity_retry_succeeds_after_failures(h: Harness) -> None:
    instance_id = await h.start("flaky", {"key": uuid.uuid4().hex, "failures": 2})
    status = await h.until(instance_id, "Completed", advance=1.0)
    assert status["output"] == "succeeded on attempt 3"


@scenario
async def test_activity_retry_gives_up_with_the_last_error(h: Harness) -> None:
    instance_id = await h.start("flaky", {"key": uuid.uuid4().hex, "failures": 5})
    status = await h.until(instance_id, "Completed", advance=1.0)
    assert status["output"].startswith("gave up: Activity function 'fail_times' failed")
    assert "attempt 3 failed" in status["output"]


@scenario
async def test_a_72_hour_timer_fires_when_the_virtual_clock_passes_it(h: Harness) -> None:
    instance_id = await h.start("approval")
    await h.waiting(instance_id)
    _, status = await h.status(instance_id)
    assert status["customStatus"] == {"waitingFor": "Decision"}
    h.clock.advance(timedelta(hours=71))
    await asyncio.sleep(0.05)
    assert (await h.status(instance_id))[1]["runtimeStatus"] == "Running"
    h.clock.advance(timedelta(hours=1, seconds=1))
    status = await h.until(instance_id, "Completed")
    assert status["output"] == {"decision": "expired"}


@scenario
async def test_event_after_the_wait_wins_the_race_and_cancels_the_timer(h: Harness) -> None:
    instance_id = await h.start("approval")
    await h.waiting(instance_id)
    code, _ = await h.post(f"/api/raise/{instance_id}/Decision", json={"approved": True})
    assert code == 202
    status = await h.until(instance_id, "Completed")
    # the SDK client JSON-encodes event data once more, as on Azure: it arrives as text
    assert json.loads(status["output"]["decision"]) == {"approved": True}
    assert h.engine.store.next_due(0) is None  # the cancelled 72 h timer is gone


@scenario
async def test_event_raised_before_the_wait_is_delivered(h: Harness) -> None:
    instance_id = h.engine.start_new("early_event")
    h.engine.raise_event(instance_id, "Early", '{"early": true}')
    status = await h.until(instance_id, "Completed")
    assert status["output"] == {"early": True}


@scenario
async def test_sub_orchestrations_and_sub_orchestration_retry(h: Harness) -> None:
    instance_id = await h.start("parent", instance_id="family")
    status = await h.until(instance_id, "Completed", advance=1.0)
    assert status["output"]["child"] == ["Hello a", "Hello async b", "Hello c"]
    assert "orchestrator exploded: child boom" in status["output"]["failed"]
    _, child = await h.status("family-child")
    assert child["runtimeStatus"] == "Completed"
    failed_children = h.engine.query(prefix="family:", statuses=["Failed"])
    assert len(failed_children) == 2  # one per attempt


@scenario
async def test_continue_as_new_restarts_with_new_input(h: Harness) -> None:
    instance_id = await h.start("counter", {"value": 0, "until": 3})
    status = await h.until(instance_id, "Completed")
    assert status["output"] == 3
    assert status["input"] == {"value": 3, "until": 3}
    assert status["customStatus"] == {"value": 3}
    _, with_history = await h.status(instance_id, showHistory="true")
    assert [e["EventType"] for e in with_history["historyEvents"]].count("ExecutionStarted") == 1


@scenario
async def test_uncaught_exception_fails_the_instance_with_its_message(h: Harness) -> None:
    instance_id = await h.start("failing", "input-7")
    status = await h.until(instance_id, "Failed")
    assert status["output"] == "orchestrator exploded: input-7"


@scenario
async def test_changed_orchestrator_code_fails_with_a_non_determinism_error(h: Harness) -> None:
    instance_id = await h.start("fickle")
    await h.waiting(instance_id)
    os.environ["DEVHOST_SAMPLE_FICKLE"] = "1"
    try:
        h.engine.raise_event(instance_id, "Continue", "1")
        status = await h.until(instance_id, "Failed")
    finally:
        del os.environ["DEVHOST_SAMPLE_FICKLE"]
    assert "NonDeterminismError" in status["output"]
    assert "'hello'" in status["output"] and "'hello_async'" in status["output"]


@scenario
async def test_terminate_through_the_sdk_client(h: Harness) -> None:
    instance_id = await h.start("approval")
    await h.waiting(instance_id)
    code, _ = await h.post(f"/api/manage/{instance_id}/terminate")
    assert code == 202
    status = await h.until(instance_id, "Terminated")
    assert status["output"] == "by test"
    code, body = await h.post(f"{MGMT}/instances/{instance_id}/raiseEvent/Decision", data="1")
    assert code == 410 and "Terminated" in body["error"]


@scenario
async def test_suspend_holds_events_until_resume(h: Harness) -> None:
    instance_id = await h.start("approval")
    await h.waiting(instance_id)
    assert (await h.post(f"/api/manage/{instance_id}/suspend"))[0] == 202
    await h.until(instance_id, "Suspended")
    h.engine.raise_event(instance_id, "Decision", '"yes"')
    await asyncio.sleep(0.1)
    assert (await h.status(instance_id))[1]["runtimeStatus"] == "Suspended"
    assert (await h.post(f"/api/manage/{instance_id}/resume"))[0] == 202
    status = await h.until(instance_id, "Completed")
    assert status["output"] == {"decision": "yes"}


@scenario
async def test_a_timer_due_while_suspended_fires_after_resume(h: Harness) -> None:
    instance_id = await h.start("approval")
    await h.waiting(instance_id)
    h.engine.suspend(instance_id, "maintenance")
    await h.until(instance_id, "Suspended")
    h.clock.advance(timedelta(hours=73))
    await asyncio.sleep(0.1)
    assert (await h.status(instance_id))[1]["runtimeStatus"] == "Suspended"
    # the due timer is held, not offered to the dispatcher again and again
    assert h.engine.store.ready_instances(h.clock.now().timestamp(), 10) == []
    h.engine.resume(instance_id, "done")
    status = await h.until(instance_id, "Completed")
    assert status["output"] == {"decision": "expired"}


@scenario
async def test_purge_removes_a_finished_instance(h: Harness) -> None:
    instance_id = await h.start("chain")
    await h.until(instance_id, "Completed")
    code, body = await h.post(f"/api/manage/{instance_id}/purge")
    assert (code, body) == (200, {"deleted": 1})
    assert (await h.status(instance_id))[0] == 404
    assert h.engine.store.history(instance_id) == []


@scenario
async def test_status_queries_filter_by_status_time_and_prefix(h: Harness) -> None:
    done = [await h.start("chain", instance_id=f"batch-{n}") for n in range(3)]
    waiting = await h.start("approval", instance_id="batch-wait")
    other = await h.start("chain", instance_id="other-1")
    for instance_id in [*done, other]:
        await h.until(instance_id, "Completed")
    await h.waiting(waiting)
    url = f"{h.host.base_url}{MGMT}/instances"

    async def ids(**query: str) -> list[str]:
        async with h.http.get(url, params=query) as response:
            assert response.status == 200
            return sorted(s["instanceId"] for s in await response.json())

    assert await ids(instanceIdPrefix="batch-") == sorted([*done, waiting])
    assert await ids(instanceIdPrefix="batch-", runtimeStatus="Running") == [waiting]
    assert await ids(runtimeStatus="Completed,Running") == sorted([*done, waiting, other])
    later = (h.clock.now() + timedelta(minutes=1)).isoformat()
    assert await ids(createdTimeFrom=later) == []
    assert len(await ids(createdTimeTo=later)) == 5


@scenario
async def test_malformed_management_calls_get_a_4xx_with_a_reason(h: Harness) -> None:
    waiting = await h.start("approval", instance_id="busy")
    await h.waiting(waiting)
    cases = [
        (f"{MGMT}/orchestrators/no_such_orchestrator", "{}", 404, "does not exist"),
        (f"{MGMT}/orchestrators/chain", "{not json", 400, "not valid JSON"),
        (f"{MGMT}/orchestrators/chain/busy", "null", 409, "already exists"),
        (f"{MGMT}/instances/nobody/raiseEvent/Decision", "1", 404, "no instance"),
        (f"{MGMT}/instances/busy/raiseEvent/Decision", "{oops", 400, "not valid JSON"),
        (f"{MGMT}/instances/busy/rewind", "", 404, "unknown instance operation"),
        (f"{MGMT}/instances/nobody/terminate", "", 404, "no instance"),
    ]
    for path, body, expected, reason in cases:
        code, answer = await h.post(path, data=body)
        assert code == expected, (path, code, answer)
        assert reason in answer["error"], (path, answer)
    for query, reason in [({"runtimeStatus": "Sleeping"}, "unknown runtimeStatus"),
                          ({"createdTimeFrom": "yesterday"}, "not an ISO 8601 time")]:
        async with h.http.get(f"{h.host.base_url}{MGMT}/instances", params=query) as response:
            assert response.status == 400
            assert reason in (await response.json())["error"]
    async with h.http.get(f"{h.host.base_url}{MGMT}/instances/busy",
                          params={"taskHub": "OtherHub"}) as response:
        assert response.status == 404 and "OtherHub" in await response.text()
    # nothing changed: the waiting instance still waits, nothing else was created
    assert (await h.status("busy"))[1]["runtimeStatus"] == "Running"
    assert [s["instanceId"] for s in h.engine.query()] == ["busy"]
