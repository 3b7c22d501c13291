"""Clocks for devhost: the wall clock, and a virtual one tests advance by hand.

Everything in devhost that waits for a point in time (durable timers, timer
triggers) goes through a Clock, so a 72-hour timer fires as soon as a test
advances a VirtualClock past it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol


def utcnow() -> datetime:
    """The current UTC time, timezone-aware."""
    return datetime.now(UTC)


class Clock(Protocol):
    """What devhost needs of time: read it, and sleep until a moment."""

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return utcnow()

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - utcnow()).total_seconds()
        await asyncio.sleep(max(0.0, delay))


class VirtualClock:
    """A clock that only moves when `advance` or `set` is called."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()
        if self._now.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")
        self._waiters: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (when, next(self._counter), future))
        await future

    def advance(self, delta: timedelta | float) -> datetime:
        """Move time forward (seconds or a timedelta) and wake every sleeper now due."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("a clock cannot go backwards")
        return self.set(self._now + delta)

    def set(self, when: datetime) -> datetime:
        """Jump to `when` (not earlier than now) and wake every sleeper now due."""
        if when < self._now:
            raise ValueError(f"a clock cannot go backwards ({when} < {self._now})")
        self._now = when
        while self._waiters and self._waiters[0][0] <= when:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.get_loop().call_soon_threadsafe(_resolve, future)
        return self._now


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
