"""Timer triggers: NCRONTAB or TimeSpan schedules fired through the host's Clock.

NCRONTAB has six fields (`sec min hour day month day-of-week`) and, as in
NCrontab, a day must match both day-of-month and day-of-week. `hh:mm:ss` and
`d.hh:mm:ss` mean a fixed interval; a schedule that is `%Name%` as a whole is read
from the app settings when devhost starts (a setting that is missing is a start-up
error naming the function and the setting). Times are UTC (WEBSITE_TIME_ZONE is not
honoured). Each timer runs one invocation at a time, including runs asked for
through the admin API (`run_now`); `IsPastDue` is set when an occurrence fires
late, including one missed while devhost was down (status kept under the data dir).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from azure.functions import meta
from azure.functions.timer import TimerRequestConverter
from croniter import CroniterError, croniter

from devhost.app_loader import TIMER_TRIGGER, FunctionIndex, FunctionInfo
from devhost.durable.clock import Clock
from devhost.invoker import Invoker

log = logging.getLogger("devhost.timers")

PAST_DUE_GRACE = timedelta(seconds=1)
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})")
_SETTING = re.compile(r"%([^%]+)%")
_NEVER = datetime.min.replace(tzinfo=UTC)


class ScheduleError(ValueError):
    """A timer schedule that cannot be used."""


class Schedule(Protocol):
    """When a timer fires next."""

    def next_after(self, when: datetime) -> datetime: ...


@dataclass(frozen=True)
class CronSchedule:
    """A six-field NCRONTAB expression."""

    expression: str

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) != 6:
            raise ScheduleError(f"'{self.expression}' has {len(fields)} fields; NCRONTAB "
                                "needs 6 (second minute hour day month day-of-week)")
        try:
            croniter(self.expression, _NEVER.replace(year=2000), second_at_beginning=True,
                     day_or=False).get_next(datetime)
        except (CroniterError, ValueError, KeyError) as error:
            raise ScheduleError(f"'{self.expression}' is not a valid NCRONTAB expression: "
                                f"{error}") from None

    def next_after(self, when: datetime) -> datetime:
        """The first occurrence strictly after `when`."""
        itr = croniter(self.expression, when, second_at_beginning=True, day_or=False)
        return itr.get_next(datetime)


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: every `interval` from the previous occurrence."""

    interval: timedelta

    def next_after(self, when: datetime) -> datetime:
        return when + self.interval


def resolved_schedule(expression: str, settings: Mapping[str, str] | None = None) -> str:
    """The schedule text, a whole `%Name%` replaced by that setting of `settings` (os.environ)."""
    env = os.environ if settings is None else settings
    text = expression.strip()
    setting = _SETTING.fullmatch(text)
    if setting:
        if setting.group(1) not in env:
            raise ScheduleError(f"schedule refers to app setting '{setting.group(1)}', "
                                "which is not set")
        text = env[setting.group(1)].strip()
    return text


def parse_schedule(expression: str, settings: Mapping[str, str] | None = None) -> Schedule:
    """An NCRONTAB or TimeSpan schedule; `%Name%` is looked up in `settings` (os.environ)."""
    text = resolved_schedule(expression, settings)
    span = _TIMESPAN.fullmatch(text)
    if span:
        days, hours, minutes, seconds = (int(g or 0) for g in span.groups())
        if hours > 23 or minutes > 59 or seconds > 59:
            raise ScheduleError(f"'{text}' is not a valid TimeSpan (hh:mm:ss)")
        interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if interval <= timedelta(0):
            raise ScheduleError(f"'{text}': a TimeSpan schedule must be positive")
        return IntervalSchedule(interval)
    return CronSchedule(text)


def timer_request(past_due: bool, last: datetime | None, next_: datetime,
                  now: datetime) -> Any:
    """A `func.TimerRequest` built through the SDK's converter."""
    info = {"Schedule": {"AdjustForDST": True}, "IsPastDue": past_due,
            "ScheduleStatus": {"Last": (last or _NEVER).isoformat(), "Next": next_.isoformat(),
                               "LastUpdated": now.isoformat()}}
    return TimerRequestConverter.decode(meta.Datum(json.dumps(info), "json"),
                                        trigger_metadata=None)


class TimerTrigger:
    """Fires one timer function on its schedule."""

    def __init__(self, function: FunctionInfo, schedule: Schedule, invoker: Invoker,
                 clock: Clock, status_dir: Path) -> None:
        self.function = function
        self.schedule = schedule
        self.invoker = invoker
        self.clock = clock
        self.status_path = status_dir / f"{function.name}.json"
        self.run_on_startup = bool(function.trigger.get("runOnStartup", False))
        self.next_occurrence: datetime | None = None
        self._one_at_a_time = asyncio.Lock()

    async def run(self) -> None:
        """Fire on start-up or for a missed occurrence if due, then on every occurrence."""
        now = self.clock.now()
        last, missed = self._load_status()
        if self.run_on_startup or (missed is not None and missed < now - PAST_DUE_GRACE):
            await self._fire(past_due=not self.run_on_startup, last=last,
                             next_=self.schedule.next_after(now))
            last = now
        due = self.schedule.next_after(self.clock.now())
        while True:
            self.next_occurrence = due
            self._save_status(last, due)
            await self.clock.sleep_until(due)
            now = self.clock.now()
            following = self.schedule.next_after(max(now, due))
            await self._fire(past_due=now - due > PAST_DUE_GRACE, last=last, next_=following)
            last = due
            due = self.schedule.next_after(max(self.clock.now(), due))

    async def fire_now(self) -> None:
        """One run outside the schedule (the admin API's), after any run in progress."""
        last, _ = self._load_status()
        await self._fire(past_due=False, last=last,
                         next_=self.next_occurrence or self.schedule.next_after(self.clock.now()))

    async def _fire(self, *, past_due: bool, last: datetime | None, next_: datetime) -> None:
        async with self._one_at_a_time:
            request = timer_request(past_due, last, next_, self.clock.now())
            try:
                await self.invoker.invoke(self.function, request)
            except Exception:  # logged with its traceback by logged_invocation; keep going
                pass

    def _load_status(self) -> tuple[datetime | None, datetime | None]:
        try:
            status = json.loads(self.status_path.read_text())
            return (datetime.fromisoformat(status["Last"]) if status.get("Last") else None,
                    datetime.fromisoformat(status["Next"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None, None

    def _save_status(self, last: datetime | None, next_: datetime) -> None:
        status = {"Last": last.isoformat() if last else None, "Next": next_.isoformat(),
                  "LastUpdated": self.clock.now().isoformat()}
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            self.status_path.write_text(json.dumps(status))
        except OSError as error:
            log.warning("timer %s: cannot save schedule status: %s", self.function.name, error)


class TimerService:
    """All timer triggers of an app; schedules are checked when it is built."""

    def __init__(self, index: FunctionIndex, invoker: Invoker, clock: Clock,
                 data_dir: Path) -> None:
        self.triggers: dict[str, TimerTrigger] = {}
        for function in index.of_trigger(TIMER_TRIGGER):
            try:
                schedule = parse_schedule(str(function.trigger.get("schedule", "")))
            except ScheduleError as error:
                raise ScheduleError(f"timer function {function.name}: {error}") from None
            self.triggers[function.name] = TimerTrigger(function, schedule, invoker, clock,
                                                        data_dir / "timers")
        self._tasks: list[asyncio.Task[None]] = []
        self._runs_now: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start every timer's loop."""
        self._tasks = [asyncio.create_task(t.run(), name=f"timer:{name}")
                       for name, t in self.triggers.items()]

    def run_now(self, name: str) -> None:
        """Run timer function `name` once in the background; KeyError if there is none."""
        task = asyncio.create_task(self.triggers[name].fire_now(), name=f"timer-now:{name}")
        self._runs_now.add(task)
        task.add_done_callback(self._runs_now.discard)

    async def stop(self) -> None:
        """Cancel the loops and runs asked for; a running synchronous function finishes in
        its thread."""
        tasks = [*self._tasks, *self._runs_now]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self._runs_now.clear()
