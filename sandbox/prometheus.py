"""A local Prometheus: Debian's `prometheus` (2.42) as a child process on a loopback port.

Its TSDB, config and log live under `data_dir` (not Debian's system service nor its
/var/lib folder). It scrapes whatever a file_sd JSON file lists (`write_targets`), which others
write: the simulator's stand-ins list their ports there, tests list a tiny /metrics server.
The file is watched and re-read every `scrape_interval`, but Prometheus 2.42 hands a changed
target list to its scrapers on fixed 5 s tickers: a target's first sample comes about 4 to 10 s
after it is listed (3.8-6.7 s measured), while a new value of a listed target shows at the next
scrape. So list a target once and keep it. No auth, no TLS, no remote write.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sandbox.tools import ChildServer, free_port, private_dir, require_tool

START_TIMEOUT = 20.0
STOP_GRACE = 5.0
REQUEST_TIMEOUT = 5.0
JOB = "standins"  # the scrape job's name, unless a target group sets its own `job` label

TargetGroup = Mapping[str, Any]  # {"targets": ["127.0.0.1:PORT"], "labels": {...}}


class PrometheusError(RuntimeError):
    """The local Prometheus did not start, or did not answer a query."""


def write_targets(path: Path, groups: Sequence[TargetGroup]) -> None:
    """Replace the file_sd file at `path` in one rename, so Prometheus never reads half of it."""
    for group in groups:
        targets = group.get("targets")
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"a target group needs a list of host:port strings: {group!r}")
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps([dict(group) for group in groups], indent=2))
    partial.replace(path)


class LocalPrometheus(ChildServer):
    """`prometheus` on 127.0.0.1, scraping the targets of `targets_file`, started by the caller."""

    name = "prometheus"
    failure = PrometheusError
    start_timeout = START_TIMEOUT
    stop_grace = STOP_GRACE

    def __init__(self, data_dir: Path, port: int = 0, scrape_interval: str = "1s",
                 targets_file: Path | None = None) -> None:
        super().__init__(data_dir, port)
        self.scrape_interval = scrape_interval
        self.targets_file = targets_file or data_dir / "targets.json"

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, the base of the HTTP API (`/api/v1/query`)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "prometheus.yml"

    def start(self) -> LocalPrometheus:
        """Write the config (and an empty targets file if none), launch, wait until ready."""
        if self.running:
            return self
        binary = require_tool("prometheus", "prometheus")
        private_dir(self.data_dir)
        if self.port == 0:
            self.port = free_port()
        if not self.targets_file.exists():
            write_targets(self.targets_file, [])
        # JSON is YAML: Prometheus reads it as its config.
        self.config_path.write_text(json.dumps(self._config(), indent=2))
        self.launch([binary, f"--config.file={self.config_path}",
                     f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{self.port}",
                     # Debian's defaults point at /etc/prometheus; nothing here uses consoles.
                     f"--web.console.templates={self.data_dir / 'consoles'}",
                     f"--web.console.libraries={self.data_dir / 'console_libraries'}"],
                    self._answers, self.url)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Return once `GET /-/ready` answers 200; PrometheusError (with the log) otherwise."""
        self.wait_until_answering(self._answers, self.url, timeout)

    def _answers(self) -> str | None:
        """None once `GET /-/ready` answers 200, else why not."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=0.5) as reply:
                return None if reply.status == 200 else f"GET /-/ready answered {reply.status}"
        except urllib.error.HTTPError as refused:
            return f"GET /-/ready answered {refused.code}"
        except OSError as error:
            return str(error) or type(error).__name__

    def set_targets(self, groups: Sequence[TargetGroup]) -> None:
        """List the targets to scrape (replacing the file's groups); picked up within a second."""
        write_targets(self.targets_file, groups)

    def add_targets(self, groups: Sequence[TargetGroup]) -> None:
        """Add target groups to those listed already, which keep being scraped."""
        write_targets(self.targets_file, [*self.targets(), *groups])

    def targets(self) -> list[dict[str, Any]]:
        """The target groups the file lists now."""
        try:
            groups = json.loads(self.targets_file.read_text())
        except FileNotFoundError:
            return []
        return list(groups)

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The `result` of an instant query (a list of series, for a vector), for tests."""
        params = {"query": promql} | ({} if at is None else {"time": f"{at:.3f}"})
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=REQUEST_TIMEOUT) as reply:
                answer = json.load(reply)
        except urllib.error.HTTPError as refused:
            answer = json.load(refused)
            raise PrometheusError(f"query {promql!r}: {answer.get('error')}") from None
        except OSError as error:
            raise PrometheusError(f"query {promql!r}: {self.url} unreachable: {error}") from None
        data = answer["data"]
        result = data["result"]
        # A scalar's result is one [time, "value"] pair: give it the shape of a vector.
        return [{"metric": {}, "value": result}] if data["resultType"] == "scalar" else result

    def wait_for(self, promql: str, timeout: float = 30.0,
                 until: Callable[[list[dict[str, Any]]], bool] = bool) -> list[dict[str, Any]]:
        """Query until `until(result)` holds (by default: a non-empty result); its result."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if until(result):
                return result
            if time.monotonic() >= deadline:
                raise PrometheusError(
                    f"{promql!r} still gives {result!r} after {timeout:g} s; targets: "
                    f"{self.targets_file.read_text()}; log tail:\n{self.log_tail()}")
            time.sleep(0.2)

    def _config(self) -> dict[str, object]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                # Prometheus refuses a timeout longer than the interval (default 10 s).
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [{
                "job_name": JOB,
                "file_sd_configs": [{
                    "files": [str(self.targets_file)],
                    "refresh_interval": self.scrape_interval,
                }],
            }],
        }
