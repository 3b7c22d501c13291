"""The devhost Host: loads an app and serves it until stopped; usable in-process.

Start-up order: local settings into the environment, host.json, import and
index the app, check routes and schedules, build the aiohttp app (the admin API
that runs a timer at once, and the Durable management routes when the app has
durable functions), listen, start the Durable engine, start timers. `stop()`
undoes it in reverse and removes the environment variables it set.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import TracebackType

from aiohttp import web

from devhost.admin import AdminApi
from devhost.app_loader import (
    ACTIVITY_TRIGGER,
    DURABLE_CLIENT,
    EVENT_GRID_TRIGGER,
    HTTP_OUTPUT,
    HTTP_TRIGGER,
    ORCHESTRATION_TRIGGER,
    SUPPORTED_TRIGGERS,
    TIMER_TRIGGER,
    FunctionIndex,
    FunctionInfo,
    load_app,
)
from devhost.durable.clock import Clock, SystemClock
from devhost.durable.engine import Engine
from devhost.durable.management import add_management_routes, client_binding_json
from devhost.eventgrid import EventGridWebhook
from devhost.http_server import HttpTriggers, create_web_app
from devhost.invoker import Invoker
from devhost.settings import HostSettings, apply_values, load_host_settings, load_local_values
from devhost.timers import TimerService, resolved_schedule

log = logging.getLogger("devhost")

KNOWN_BINDINGS = SUPPORTED_TRIGGERS | {HTTP_OUTPUT, DURABLE_CLIENT}


class Host:
    """One Function App served over HTTP on `host:port` (port 0 picks a free one)."""

    def __init__(self, app_dir: Path | str, port: int = 0, data_dir: Path | str | None = None,
                 clock: Clock | None = None, host: str = "127.0.0.1") -> None:
        self.app_dir = Path(app_dir).resolve()
        self.data_dir = Path(data_dir).resolve() if data_dir else self.app_dir / ".devhost"
        self.clock: Clock = clock or SystemClock()
        self.host = host
        self.port = port
        self.settings = HostSettings()
        self.index = FunctionIndex([])
        self.invoker: Invoker | None = None
        self.engine: Engine | None = None
        self.web_app: web.Application | None = None
        self.timers: TimerService | None = None
        self._http: HttpTriggers | None = None
        self._runner: web.AppRunner | None = None
        self._env_set: list[str] = []

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` with the bound port, no trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def functions(self) -> list[FunctionInfo]:
        return list(self.index)

    async def start(self) -> None:
        """Load the app and serve it; on failure nothing is left running."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self._env_set = apply_values(load_local_values(self.app_dir))
        self.settings = load_host_settings(self.app_dir)
        self.index = load_app(self.app_dir)
        self.invoker = Invoker(self.index, app_dir=self.app_dir,
                               max_activities=self.settings.max_activities)
        self._http = HttpTriggers(self.index, self.invoker, self.settings.route_prefix)
        self.timers = TimerService(self.index, self.invoker, self.clock, self.data_dir)
        extend = [AdminApi(self.index, self.timers).add_routes]
        if self.index.has_durable:
            self.engine = self._make_engine(self.invoker)
            extend.append(self._add_durable_routes)
        self.web_app = create_web_app(self._http, EventGridWebhook(self.index, self.invoker).handle,
                                      extend)
        self._runner = web.AppRunner(self.web_app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # SO_REUSEADDR: sockets a killed devhost left in TIME-WAIT must not hold the port.
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()
        self.port = int(self._runner.addresses[0][1])
        if self.engine is not None:
            engine = self.engine
            self.invoker.durable_client = lambda: client_binding_json(engine, self.base_url)
            await engine.start()
        self.timers.start()
        self._log_functions()
        log.info("devhost listening on %s", self.base_url)

    def _make_engine(self, invoker: Invoker) -> Engine:
        return Engine(data_dir=self.data_dir, hub_name=self.settings.hub_name,
                      orchestrators=invoker.orchestrators, run_activity=invoker.run_activity,
                      clock=self.clock, max_activities=self.settings.max_activities,
                      max_orchestrators=self.settings.max_orchestrators,
                      versioning=self.settings.versioning)

    def _add_durable_routes(self, app: web.Application) -> None:
        assert self.engine is not None
        add_management_routes(app, self.engine)

    def _log_functions(self) -> None:
        log.info("%d function(s) in %s", len(self.index), self.app_dir)
        for function in self.index:
            log.info("  %s: %s", function.name, self._describe(function))
            for binding in function.bindings:
                if binding.get("type") not in KNOWN_BINDINGS:
                    log.warning("  %s: binding %s (%s) is not emulated: an input receives "
                                "None, an output is discarded", function.name,
                                binding.get("name"), binding.get("type"))

    def _describe(self, function: FunctionInfo) -> str:
        kind = function.trigger_type
        if kind == HTTP_TRIGGER and self._http is not None:
            methods = ",".join(function.trigger.get("methods") or ["*"])
            return f"[{methods}] {self._http.url_of(function, self.base_url)}"
        if kind == EVENT_GRID_TRIGGER:
            return (f"eventGridTrigger {self.base_url}/runtime/webhooks/eventgrid"
                    f"?functionName={function.name}")
        if kind == TIMER_TRIGGER and self.timers is not None:
            timer = self.timers.triggers[function.name]
            startup = ", runOnStartup" if timer.run_on_startup else ""
            declared = str(function.trigger.get("schedule"))
            resolved = resolved_schedule(declared)
            shown = declared if resolved == declared.strip() else f"{declared}' = '{resolved}"
            return f"timerTrigger '{shown}'{startup}"
        if kind in (ORCHESTRATION_TRIGGER, ACTIVITY_TRIGGER):
            return kind
        if kind not in SUPPORTED_TRIGGERS:
            return f"{kind} (not served by devhost: it will never run)"
        return kind

    async def stop(self) -> None:
        """Stop timers, then the Durable engine, then the HTTP server; idempotent."""
        if self.timers is not None:
            await self.timers.stop()
        if self.engine is not None:
            engine, self.engine = self.engine, None
            await engine.stop()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self.invoker is not None:
            self.invoker.close()
        for name in self._env_set:
            os.environ.pop(name, None)
        self._env_set = []

    async def __aenter__(self) -> Host:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.stop()
