"""The SDK pipelines `setup.py` chooses from: Microsoft's distro, OTLP/HTTP, and the tests'
in-memory exporters. Imported only when one is made, so an app without telemetry settings
never loads the SDK."""

from __future__ import annotations

import logging
import os
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

from shared.telemetry.generator import ContextIdGenerator
from shared.telemetry.setup import INSTRUMENTATIONS_OFF, LOGGER_NAME, OUR_LOGGERS, SCOPE

Providers = tuple[TracerProvider, Any, logging.Handler]


@dataclass(frozen=True)
class InMemory:
    """The in-memory exporters of `setup.install_in_memory`."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: InMemoryLogRecordExporter


def in_memory() -> tuple[Providers, InMemory]:
    """Providers that export into memory (none of them set as the global one)."""
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    tracers = TracerProvider(resource=_resource(), id_generator=ContextIdGenerator())
    tracers.add_span_processor(SimpleSpanProcessor(spans))
    meters = MeterProvider(metric_readers=[metrics], resource=_resource())
    loggers = LoggerProvider(resource=_resource())
    loggers.add_log_record_processor(SimpleLogRecordProcessor(logs))
    return (tracers, meters, _handler(loggers)), InMemory(spans, metrics, logs)


def _resource() -> Resource:
    return Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME")
                            or os.environ.get("WEBSITE_SITE_NAME") or SCOPE})


def _handler(loggers: LoggerProvider) -> logging.Handler:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    return LoggingHandler(level=logging.INFO, logger_provider=loggers)


def ingestion_credential(authentication: str | None) -> Any:
    """The app's managed identity when `authentication` asks for Entra ID
    (`Authorization=AAD;ClientId=…`), else None (the connection string's key is enough)."""
    fields = dict(part.split("=", 1) for part in (authentication or "").split(";")
                  if "=" in part)
    if fields.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = fields.get("ClientId") or None
    return ManagedIdentityCredential(client_id=client_id) if client_id \
        else ManagedIdentityCredential()


def azure_monitor(connection_string: str, authentication: str | None = None) -> Providers:
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
        credential=ingestion_credential(authentication),
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


def otlp() -> Providers:
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
