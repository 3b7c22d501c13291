"""`attempt`: an activity call whose transient failures are retried with backoff (durable
timers) and whose permanent ones are not (the activity boundary's marker says which)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from orchestrations.context import OrchestrationContext
from shared.releases.failures import ATTEMPTS, is_permanent, retry_delay


def attempt(context: OrchestrationContext, activity: str,
            request: dict[str, Any]) -> Generator[Any, Any, Any]:
    """Run an activity; transient failures are retried with backoff, permanent ones are not."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return (yield context.call_activity(activity, request))
        except Exception as failure:
            if number == ATTEMPTS or is_permanent(str(failure)):
                raise
            yield context.create_timer(context.current_utc_datetime + retry_delay(number))
    raise AssertionError("unreachable")
