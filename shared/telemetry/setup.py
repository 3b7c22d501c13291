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
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from shared.telemetry.generator import ContextIdGenerator
from shared.telemetry.instruments import Instruments
from shared.telemetry.logs import ReleaseAttributes

log = logging.getLogger(__name__)

CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
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
            _use(_azure_monitor(settings[CONNECTION_STRING]), "azure")
        elif settings.get(OTLP_ENDPOINT):
            _use(_otlp(), "otlp")
    except Exception as error:  # noqa: BLE001 (telemetry must not stop the app)
        log.error("telemetry not configured: %s", type(error).__name__)
    return _pipeline.mode


@dataclass(frozen=True)
class InMemory:
    """The in-memory exporters of `install_in_memory`."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: InMemoryLogRecordExporter


def install_in_memory() -> InMemory:
    """Tests: send everything to the SDK's in-memory exporters (no global provider set)."""
    uninstall()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    tracers = TracerProvider(resource=_resource(), id_generator=ContextIdGenerator())
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    meters = MeterProvider(metric_readers=[metrics], resource=_resource())
    loggers = LoggerProvider(resource=_resource())
    loggers.add_log_record_processor(SimpleLogRecordProcessor(logs))
    _use((tracers, meters, _handler(loggers)), "memory")
    return InMemory(spans, metrics, logs)


def uninstall() -> None:
    """Back to nothing recorded (tests); configure() may run again."""
    global _pipeline, _configured
    if _pipeline.handler is not None:
        for name in OUR_LOGGERS:
            logging.getLogger(name).removeHandler(_pipeline.handler)
    _pipeline, _configured = Pipeline(), False


def _use(providers: tuple[TracerProvider, Any, logging.Handler], mode: str) -> None:
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


def _resource() -> Resource:
    return Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME")
                            or os.environ.get("WEBSITE_SITE_NAME") or SCOPE})


def _handler(loggers: LoggerProvider) -> logging.Handler:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    return LoggingHandler(level=logging.INFO, logger_provider=loggers)


def _azure_monitor(connection_string: str) -> tuple[TracerProvider, Any, logging.Handler]:
    """Microsoft's distro with our loggers and no per-HTTP-call instrumentation; our id
    generator on the tracer provider it made (the distro takes none).

    When the process has an SDK tracer provider already (the Functions Python worker
    configures the distro itself under `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`), that
    pipeline is used as it is, not configured twice (which would export everything twice)."""
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        existing.id_generator = ContextIdGenerator()  # type: ignore[assignment]
        handlers = [h for name in ("", *OUR_LOGGERS) for h in logging.getLogger(name).handlers
                    if isinstance(h, LoggingHandler)]
        if not handlers:
            raise TypeError("the process's OpenTelemetry pipeline exports no logs")
        return existing, metrics.get_meter_provider(), handlers[0]
    configure_azure_monitor(
        connection_string=connection_string, logger_name=LOGGER_NAME,
        instrumentation_options={name: {"enabled": False} for name in INSTRUMENTATIONS_OFF},
        enable_live_metrics=False, enable_performance_counters=False,
        sampling_ratio=1.0)  # a release is one trace: never keep only part of it
    tracers = trace.get_tracer_provider()
    if not isinstance(tracers, TracerProvider):
        raise TypeError("the distro set no SDK tracer provider")
    # The SDK annotates the attribute as RandomIdGenerator; any IdGenerator works.
    tracers.id_generator = ContextIdGenerator()  # type: ignore[assignment]
    handler = next(h for h in logging.getLogger(LOGGER_NAME).handlers
                   if isinstance(h, LoggingHandler))
    return tracers, metrics.get_meter_provider(), handler


def _otlp() -> tuple[TracerProvider, Any, logging.Handler]:
    """The SDK with OTLP/HTTP exporters; endpoint and headers from the OTEL_* settings."""
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracers = TracerProvider(resource=_resource(), id_generator=ContextIdGenerator())
    tracers.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meters = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())],
                           resource=_resource())
    loggers = LoggerProvider(resource=_resource())
    loggers.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    trace.set_tracer_provider(tracers)
    metrics.set_meter_provider(meters)
    return tracers, meters, _handler(loggers)


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
