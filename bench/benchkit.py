"""What every benchmark shares: repository imports, quiet invocation logs, the aims block.

`python bench/NAME.py` puts `bench/` first on the import path, where a benchmark file
would shadow a package of the same name (`bench/devhost.py` vs `devhost`). Importing this
module drops `bench/` and puts the repository first; benchmarks import it before anything
of the project. It also sets the app's reconciler schedule (RECONCILE_SCHEDULE) as the
sample settings have it, unless set: the app does not start without it.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

sys.path[:] = [str(REPO)] + [p for p in sys.path
                             if Path(p or ".").resolve() not in (BENCH, REPO)]
os.environ.setdefault("RECONCILE_SCHEDULE", json.loads(
    (REPO / "local.settings.sample.json").read_text("utf-8"))["Values"]["RECONCILE_SCHEDULE"])


@contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Raise the named loggers to WARNING for the block (per-invocation INFO lines)."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def print_aims(aims: Iterable[tuple[str, bool]]) -> None:
    """One `aim met|MISSED: …` line per aim: the benchmarks print aims, never assert them."""
    for text, met in aims:
        print(f"aim {'met' if met else 'MISSED'}: {text}")


@dataclass
class Timings:
    """One side of one operation: wall times (ms) and the requests a server saw, per run."""

    ms: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.ms, n=10)[-1]

    @property
    def median_requests(self) -> float:
        return statistics.median(self.requests)


@asynccontextmanager
async def app_host(data_dir: Path, port: int = 0) -> AsyncIterator[Any]:
    """devhost serving the app with its timer triggers stopped (the benchmark drives every
    release itself); stopped when the block ends."""
    from devhost.host import Host

    host = Host(REPO, port=port, data_dir=data_dir)
    await host.start()
    try:
        if host.engine is None or host.timers is None:
            raise RuntimeError(f"{REPO}: devhost found no durable functions in the app")
        await host.timers.stop()
        yield host
    finally:
        await host.stop()
