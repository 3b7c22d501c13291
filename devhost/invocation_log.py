"""One log line per function invocation: function, kind, duration, outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("devhost.invocations")


def log_invocation(function: str, kind: str, elapsed_ms: float, error: str | None = None) -> None:
    """Log one finished invocation; `error` is a one-line reason when it failed."""
    if error is None:
        log.info("%s (%s) %.1f ms Succeeded", function, kind, elapsed_ms)
    else:
        log.error("%s (%s) %.1f ms Failed: %s", function, kind, elapsed_ms, error)


@contextmanager
def logged_invocation(function: str, kind: str) -> Iterator[None]:
    """Time the block and log its outcome; a failure is logged with its traceback and re-raised."""
    started = time.perf_counter()
    try:
        yield
    except Exception as error:
        elapsed = (time.perf_counter() - started) * 1000
        log.error("%s (%s) %.1f ms Failed: %s: %s", function, kind, elapsed,
                  type(error).__name__, error, exc_info=True)
        raise
    log_invocation(function, kind, (time.perf_counter() - started) * 1000)
