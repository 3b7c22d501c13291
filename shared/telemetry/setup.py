"""`configure()`: the app's telemetry pipeline, chosen once at start from the app settings.

`APPLICATIONINSIGHTS_CONNECTION_STRING` → Microsoft's distro (`configure_azure_monitor`);
else `OTEL_EXPORTER_OTLP_ENDPOINT` → the SDK with OTLP/HTTP exporters; else nothing at all
(no SDK provider: `enabled()` is False and callers skip even building attributes).
`install_in_memory()` is the tests' hook: the SDK's in-memory exporters, no global state.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.telemetry.instruments import Instruments
from shared.telemetry.logs import ReleaseAttributes

if TYPE_CHECKING:  # the SDK is imported only when a pipeline is made (pipelines.py)
    from opentelemetry.trace import Tracer

    from shared.telemetry.pipelines import InMemory

log = logging.getLogger(__name__)

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
# "Authorization=AAD[;ClientId=…]": ingestion takes Entra tokens only (local auth off), as
# infra/ sets it up; the exporter then signs in with the app's managed identity.
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
SCOPE = "release-workflow"
LOGGER_NAME = "release_workflow"  # the orchestrators' own log lines (see orchestrations/tracing.py)
# Our code logs under these packages' loggers (module `__name__`s); others (the Azure SDKs'
# HTTP logging) are not exported.
OUR_LOGGERS = (LOGGER_NAME, "shared", "activities", "triggers", "orchestrations",
               "function_app", "blueprints")
# Auto-instrumentations the distro would enable that add a span (and a dependency row) per
# ledger, registry, cluster or Key Vault HTTP call: off, the release trace says what matters.
INSTRUMENTATIONS_OFF = ("azure_sdk", "requests", "urllib", "urllib3", "httpx", "django",
                        "fastapi", "flask", "psycopg2")


@dataclass
class Pipeline:
    """What telemetry goes through now: `mode` is "off", "azure", "otlp" or "memory"."""

    mode: str = "off"
    tracer: Tracer | None = None
    instruments: Instruments | None = None
    handler: logging.Handler | None = None


_pipeline = Pipeline()
_configured = False


def enabled() -> bool:
    """Whether anything is recorded; False: callers take the fast path and build nothing."""
    return _pipeline.tracer is not None


def pipeline() -> Pipeline:
    return _pipeline


def configure(environ: Mapping[str, str] | None = None) -> str:
    """Set up the pipeline the settings name, once per process; its mode.

    A setting the exporter refuses is logged (never its value) and leaves telemetry off:
    telemetry never stops the app."""
    global _configured
    if _configured or _pipeline.mode != "off":
        return _pipeline.mode
    _configured = True
    settings = os.environ if environ is None else environ
    try:
        if settings.get(CONNECTION_STRING):
            from shared.telemetry.pipelines import azure_monitor
            _use(azure_monitor(settings[CONNECTION_STRING],
                               settings.get(AUTHENTICATION_STRING)), "azure")
        elif settings.get(OTLP_ENDPOINT):
            from shared.telemetry.pipelines import otlp
            _use(otlp(), "otlp")
    except Exception as error:  # noqa: BLE001 (telemetry must not stop the app)
        log.error("telemetry not configured: %s", type(error).__name__)
    return _pipeline.mode


def install_in_memory() -> InMemory:
    """Tests: send everything to the SDK's in-memory exporters (no global provider set)."""
    from shared.telemetry.pipelines import in_memory
    uninstall()
    providers, memory = in_memory()
    _use(providers, "memory")
    return memory


def uninstall() -> None:
    """Back to nothing recorded (tests); configure() may run again."""
    global _pipeline, _configured
    if _pipeline.handler is not None:
        for name in OUR_LOGGERS:
            logging.getLogger(name).removeHandler(_pipeline.handler)
    _pipeline, _configured = Pipeline(), False


def _use(providers: tuple[Any, Any, logging.Handler], mode: str) -> None:
    """Take the providers' tracer and meter, and our loggers to the handler."""
    tracers, meters, handler = providers
    handler.addFilter(ReleaseAttributes())
    own = logging.getLogger(LOGGER_NAME)
    if own.level == logging.NOTSET:  # the orchestrators' outcome lines are INFO
        own.setLevel(logging.INFO)
    if handler not in logging.getLogger().handlers:  # on the root, our records reach it
        for name in OUR_LOGGERS:
            logger = logging.getLogger(name)
            if handler not in logger.handlers:
                logger.addHandler(handler)
    global _pipeline
    _pipeline = Pipeline(mode, tracers.get_tracer(SCOPE),
                         Instruments.of(meters.get_meter(SCOPE)), handler)


def flush() -> None:
    """Export what is buffered now (tests, benchmarks, shutdown)."""
    from opentelemetry import metrics, trace
    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if callable(force_flush):
            force_flush()
    from opentelemetry._logs import get_logger_provider
    force_flush = getattr(get_logger_provider(), "force_flush", None)
    if callable(force_flush):
        force_flush()
