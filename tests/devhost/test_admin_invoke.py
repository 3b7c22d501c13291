"""`POST /admin/functions/{name}` runs a timer function at once, as the Functions host does;
other kinds and bad bodies get a one-line 4xx and run nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from devhost.admin import AdminBodyError, local_caller, parse_invocation
from devhost.durable.clock import VirtualClock
from devhost.host import Host
from tests.devhost.test_timers import fired, wait_fired

T0 = datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)  # the clock never moves: only asked-for runs


def test_a_post_runs_the_timer_now_and_answers_202(serve) -> None:
    async def scenario(host: Host, session):
        await wait_fired(session, "yearly_and_on_startup", 1)  # its start-up run
        async with session.post("/admin/functions/every_five_seconds",
                                json={"input": ""}) as response:
            status, body = response.status, await response.read()
        records = await wait_fired(session, "every_five_seconds", 1)
        async with session.post("/admin/functions/Every_Five_Seconds",  # any case, as the host
                                data=b'{"input": "ignored for a timer"}') as response:
            again = response.status
        records = await wait_fired(session, "every_five_seconds", 2)
        return status, body, again, records, host.clock.now()

    status, body, again, records, now = serve("timer_app", scenario, clock=VirtualClock(T0))
    assert (status, body, again) == (202, b"", 202)
    assert [(r["past_due"], r["next"]) for r in records] == [
        (False, "2026-01-01T00:00:05+00:00")] * 2
    assert now == T0


def test_runs_asked_for_never_overlap_a_run_of_the_same_timer(serve) -> None:
    async def scenario(host: Host, session):
        for _ in range(3):  # each run takes 0.3 s
            async with session.post("/admin/functions/slow_interval", json={}) as response:
                assert response.status == 202
        await wait_fired(session, "slow_interval", 3)
        async with session.get("/api/fired") as response:
            return (await response.json())["max_running"]

    assert serve("timer_app", scenario, clock=VirtualClock(T0)) == 1


@pytest.mark.parametrize(("path", "body", "status", "reason"), [
    ("/admin/functions/no_such_function", b'{"input": ""}', 404,
     "no function named 'no_such_function'"),
    ("/admin/functions/report", b'{"input": ""}', 400,
     "devhost runs only timer functions through the admin API; report is HTTP-triggered: "
     "call its route"),
    ("/admin/functions/every_five_seconds", b"", 400, 'the body must be JSON such as '
     '{"input": ""}'),
    ("/admin/functions/every_five_seconds", b"input=x", 400, 'the body must be JSON such as '
     '{"input": ""}'),
    ("/admin/functions/every_five_seconds", b'["input"]', 400,
     'the body must be a JSON object such as {"input": ""}'),
    ("/admin/functions/every_five_seconds", b'{"input": {"a": 1}}', 400,
     "input must be a string, number, boolean or null"),
    ("/admin/functions/every_five_seconds", b"[" * 30_000 + b"]" * 30_000, 400,
     'the body must be JSON such as {"input": ""}'),
    ("/admin/functions/every_five_seconds", b'{"input": "' + b"x" * 70_000 + b'"}', 413,
     "an admin invocation body is at most 65536 bytes"),
])
def test_what_cannot_run_is_a_4xx_with_one_line_and_runs_nothing(
        serve, path: str, body: bytes, status: int, reason: str) -> None:
    async def scenario(host: Host, session):
        await wait_fired(session, "yearly_and_on_startup", 1)
        async with session.post(path, data=body) as response:
            answer = response.status, await response.json()
        await asyncio.sleep(0.1)
        return answer, await fired(session, "every_five_seconds"), await fired(session, "report")

    (got, error), timer_runs, http_runs = serve("timer_app", scenario, clock=VirtualClock(T0))
    assert (got, error["reason"]) == (status, reason)
    assert "\n" not in error["reason"] and timer_runs == http_runs == []


def test_other_methods_are_not_the_admin_api(serve) -> None:
    async def scenario(host: Host, session):
        async with session.get("/admin/functions/every_five_seconds") as response:
            return response.status

    assert serve("timer_app", scenario, clock=VirtualClock(T0)) == 404


@pytest.mark.parametrize(("body", "value"), [
    (b'{"input": "sample"}', "sample"), (b'{"input": 3}', 3), (b'{"input": true}', True),
    (b'{"input": null}', None), (b"{}", None), ('{"input": "\u00e9"}'.encode(), "\u00e9")])
def test_the_input_may_be_a_string_number_boolean_or_null(body: bytes, value: object) -> None:
    assert parse_invocation(body) == value


def test_nested_json_is_refused_without_a_traceback() -> None:
    with pytest.raises(AdminBodyError, match="must be JSON"):
        parse_invocation(json.dumps({"input": "x"}).encode()[:-1] + b"[" * 100_000)
    with pytest.raises(AdminBodyError, match="must be JSON"):
        parse_invocation(b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


@pytest.mark.parametrize(("remote", "local"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("192.0.2.10", False),
    ("10.0.0.1", False), ("2001:db8::1", False), (None, False), ("not-an-address", False)])
def test_only_callers_on_this_machine_may_use_it(remote: str | None, local: bool) -> None:
    assert local_caller(remote) is local


@pytest.mark.parametrize(("app", "name", "how"), [
    ("durable_app", "chain", "an orchestrator: start it through a durable client"),
    ("durable_app", "hello", "an activity: it runs when an orchestration calls it"),
    ("eventgrid_app", "on_event", "Event Grid-triggered: post the event to "
                                  "/runtime/webhooks/eventgrid?functionName=on_event"),
])
def test_other_kinds_are_told_how_to_run(serve, app: str, name: str, how: str) -> None:
    async def scenario(host: Host, session):
        async with session.post(f"/admin/functions/{name}", json={"input": ""}) as response:
            return response.status, (await response.json())["reason"]

    assert serve(app, scenario) == (400, "devhost runs only timer functions through the "
                                         f"admin API; {name} is {how}")
