"""Timer triggers driven by a VirtualClock, and schedule parsing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from devhost.durable.clock import VirtualClock
from devhost.host import Host
from devhost.timers import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule

T0 = datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def fired(session, name: str | None = None) -> list[dict]:
    async with session.get("/api/fired") as response:
        records = (await response.json())["fired"]
    return [r for r in records if name is None or r["name"] == name]


async def wait_fired(session, name: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 5
    while len(records := await fired(session, name)) < count:
        assert time.monotonic() < deadline, f"{name} fired {len(records)} times, not {count}"
        await asyncio.sleep(0.005)
    return records


def test_schedule_run_on_startup_and_past_due(serve) -> None:
    clock = VirtualClock(T0)

    async def scenario(host: Host, session):
        timer = host.timers.triggers["every_five_seconds"]

        async def step(seconds: int, expect_next_due: str, count: int) -> None:
            clock.advance(seconds)
            await wait_fired(session, "every_five_seconds", count)
            await until(lambda: timer.next_occurrence == datetime.fromisoformat(expect_next_due))

        startup = await wait_fired(session, "yearly_and_on_startup", 1)
        await until(lambda: timer.next_occurrence == T0 + timedelta(seconds=3))
        await step(3, "2026-01-01T00:00:10+00:00", 1)    # on time, at :05
        await step(12, "2026-01-01T00:00:20+00:00", 2)   # :10 fires late, at :17
        await step(3, "2026-01-01T00:00:25+00:00", 3)    # on time, at :20
        await asyncio.sleep(0.05)
        return startup, await fired(session, "every_five_seconds")

    startup, every_five = serve("timer_app", scenario, clock=clock)
    assert [r["past_due"] for r in startup] == [False]
    assert [(r["past_due"], r["next"]) for r in every_five] == [
        (False, "2026-01-01T00:00:10+00:00"),
        (True, "2026-01-01T00:00:20+00:00"),
        (False, "2026-01-01T00:00:25+00:00")]


def test_occurrence_missed_while_down_fires_past_due_at_start(serve, tmp_path) -> None:
    status = tmp_path / "data" / "timers" / "every_five_seconds.json"
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({"Last": "2025-12-31T23:58:55+00:00",
                                  "Next": "2025-12-31T23:59:00+00:00"}))

    async def scenario(host, session):
        records = await wait_fired(session, "every_five_seconds", 1)
        await until(lambda: host.timers.triggers["every_five_seconds"].next_occurrence
                    is not None)
        return records, json.loads(status.read_text())

    records, saved = serve("timer_app", scenario, clock=VirtualClock(T0))
    assert [r["past_due"] for r in records] == [True]
    assert saved["Next"] == "2026-01-01T00:00:05+00:00"


def test_one_invocation_at_a_time_per_timer(serve) -> None:
    clock = VirtualClock(T0)

    async def scenario(host: Host, session):
        timer = host.timers.triggers["slow_interval"]
        await until(lambda: timer.next_occurrence == T0 + timedelta(seconds=30))
        clock.advance(30)                    # starts a 0.3 s invocation
        await asyncio.sleep(0.05)
        clock.advance(30)                    # occurrences during it do not overlap it
        await asyncio.sleep(0.05)
        clock.advance(30)
        records = await wait_fired(session, "slow_interval", 1)
        await until(lambda: timer.next_occurrence > clock.now())
        async with session.get("/api/fired") as response:
            return records, (await response.json())["max_running"]

    records, max_running = serve("timer_app", scenario, clock=clock)
    assert len(records) == 1
    assert max_running == 1


def test_invalid_schedule_is_a_startup_error_naming_the_function(apps, tmp_path) -> None:
    async def start() -> None:
        host = Host(apps / "bad_schedule_app", data_dir=tmp_path)
        await host.start()
        await host.stop()

    with pytest.raises(ScheduleError, match="timer function five_field_cron: .* has 5 fields"):
        asyncio.run(start())


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("*/5 * * * * *", "2026-01-01T00:00:02", "2026-01-01T00:00:05"),
    ("0 30 9 * * 1-5", "2026-01-02T10:00:00", "2026-01-05T09:30:00"),   # Fri -> Mon
    ("0 0 0 13 * FRI", "2026-01-01T00:00:00", "2026-02-13T00:00:00"),   # day AND weekday
    ("0 0 * * * *", "2026-01-01T00:59:59", "2026-01-01T01:00:00"),
])
def test_cron_schedule_next(expression: str, after: str, expected: str) -> None:
    when = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert parse_schedule(expression).next_after(when) == \
        datetime.fromisoformat(expected).replace(tzinfo=UTC)


def test_timespan_and_app_setting_schedules() -> None:
    assert parse_schedule("00:05:00") == IntervalSchedule(timedelta(minutes=5))
    assert parse_schedule("1.02:00:00") == IntervalSchedule(timedelta(days=1, hours=2))
    assert parse_schedule("%SCHED%", {"SCHED": "0 0 * * * *"}) == CronSchedule("0 0 * * * *")


@pytest.mark.parametrize(("expression", "reason"), [
    ("0 */5 * * *", "has 5 fields"),
    ("0 0 25 * * *", "not a valid NCRONTAB"),
    ("00:00:00", "must be positive"),
    ("00:61:00", "not a valid TimeSpan"),
    ("%MISSING_SETTING%", "MISSING_SETTING"),
])
def test_bad_schedules(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        parse_schedule(expression, {})
