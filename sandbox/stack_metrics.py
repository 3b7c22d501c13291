"""The stack's metrics: Prometheus follows the simulator's stand-ins, and a little traffic flows.

`StandinFollower` is a thread that, every `period` seconds, writes the stand-ins the simulator
serves (`sim.standins()`) into the local Prometheus's file_sd targets when they changed, and
starts steady traffic through each Service it is given once it exists (Helm makes
`delivery`'s with the first release, the stack makes `web`'s at start; the simulator pauses
traffic while a Service is missing), so error-rate queries have data.
Does not start the simulator or Prometheus: see stack.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from sandbox.kube.objects import ApiError
from sandbox.kube.server import KubeSimulator
from sandbox.kube.standins import file_sd_targets
from sandbox.prometheus import write_targets
from sandbox.tools import Managed

FOLLOW_SECONDS = 0.25  # the simulator's own stand-ins follow wall-clock changes as often
TRAFFIC_RPS = 4.0  # per Service: a few requests a second make a rate per pod every scrape

log = logging.getLogger(__name__)


class StandinFollower(Managed):
    """Keep Prometheus's targets file in step with `kube.standins()` and traffic flowing."""

    def __init__(self, kube: KubeSimulator, targets_file: Path, *,
                 services: Sequence[tuple[str, str]] = (), rps: float = TRAFFIC_RPS,
                 period: float = FOLLOW_SECONDS) -> None:
        self.kube = kube
        self.targets_file = targets_file
        self.services = list(services)  # (namespace, Service name) to drive traffic through
        self.rps = rps
        self.period = period
        self.written: list[dict[str, object]] | None = None  # the targets last written
        self._flowing: set[tuple[str, str]] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def flowing(self) -> set[tuple[str, str]]:
        """The Services traffic has been started through."""
        return set(self._flowing)

    def start(self) -> StandinFollower:
        """Follow once now (so the file exists when Prometheus starts reading), then every
        `period` on a daemon thread."""
        self.follow()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="standin-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)

    def follow(self) -> None:
        """One look: rewrite the targets file if the stand-ins changed; start missing traffic."""
        targets = file_sd_targets(self.kube.standins())
        if targets != self.written:
            write_targets(self.targets_file, targets)
            self.written = targets
        for namespace, name in self.services:
            if (namespace, name) in self._flowing:
                continue
            try:
                self.kube.generate_traffic(namespace, name, self.rps)
            except ApiError:
                continue  # no Service yet: Helm makes it with the first release
            self._flowing.add((namespace, name))

    def _run(self) -> None:
        while not self._stopping.wait(self.period):
            try:
                self.follow()
            except Exception as error:  # a dead follower would leave Prometheus behind
                # The stack's health watch notices a dead simulator; keep trying meanwhile.
                log.warning("following the stand-ins failed: %s", error)
