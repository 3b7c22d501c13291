"""The pipelines `configure()` sets up from the app settings, each in a fresh process (the
OpenTelemetry providers are process-wide): the Azure Monitor distro's real exporter posting to
a loopback TLS ingestion endpoint, the OTLP/HTTP exporters posting to a loopback collector,
and nothing at all without a setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devhost.settings import load_host_settings
from sandbox.tls import TlsFiles
from shared.telemetry import ids
from tests.telemetry.ingestion import IngestionReceiver

REPO = Path(__file__).resolve().parents[2]
RELEASE = "delivery-0123456789abcdef"

# Imports the app as the Functions worker does (function_app calls configure()), then writes
# a release's root span, a gate span under its environment, a metric and a log line.
EMIT = """
import json, logging, sys
from datetime import UTC, datetime, timedelta
if sys.argv[2:] == ["worker"]:  # the Functions worker configured the distro before the app
    from azure.monitor.opentelemetry import configure_azure_monitor
    configure_azure_monitor(enable_live_metrics=False)
import function_app  # noqa: F401 (configures telemetry from the app settings)
from opentelemetry import metrics, trace
from shared.telemetry import ids, metrics as release_metrics, setup, spans
from shared.telemetry.logs import release_scope

release = sys.argv[1]
mode = setup.pipeline().mode
if mode != "off":
    end = datetime.now(UTC)
    start = end - timedelta(minutes=5)
    attributes = {"release.id": release, "release.service": "delivery"}
    spans.emit("release", release, ids.release_span_id(release), None, start, end,
               {**attributes, "release.outcome": "Completed"})
    spans.emit("gate", release, ids.span_id(release, "prod", "gate", 0),
               ids.environment_span_id(release, "prod"), start, end - timedelta(minutes=1),
               {**attributes, "release.outcome": "Approved"})
    release_metrics.release_ended("delivery", "Completed", 300.0)
    with release_scope({"release.id": release}):
        logging.getLogger("shared.example").warning("release step done")
    setup.flush()
print(json.dumps({"mode": mode, "enabled": setup.enabled(),
                  "tracer": type(trace.get_tracer_provider()).__name__,
                  "meter": type(metrics.get_meter_provider()).__name__,
                  "sdk_loaded": any(name.startswith("opentelemetry.sdk") for name in sys.modules)}))
"""


def run_app(settings: dict[str, str], *extra: str) -> dict[str, Any]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("APPLICATIONINSIGHTS_", "OTEL_"))}
    done = subprocess.run([sys.executable, "-c", EMIT, RELEASE, *extra], cwd=REPO, timeout=90,
                          env={**environment, **settings}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_without_a_setting_nothing_is_configured() -> None:
    seen = run_app({})
    assert seen == {"mode": "off", "enabled": False, "tracer": "ProxyTracerProvider",
                    "meter": "_ProxyMeterProvider", "sdk_loaded": False}  # not even imported


@pytest.mark.parametrize("first", ["app", "worker"])
def test_the_distro_sends_the_release_trace_to_the_ingestion_endpoint(
        tls_files: TlsFiles, tmp_path: Path, first: str) -> None:
    """`first`: the app configures the distro, or finds it configured by the Functions
    worker (`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`) and uses it as it is."""
    key = str(uuid.uuid4())
    with IngestionReceiver(tls_files) as receiver:
        seen = run_app({
            "APPLICATIONINSIGHTS_CONNECTION_STRING": receiver.connection_string(key),
            "REQUESTS_CA_BUNDLE": str(tls_files.ca), "SSL_CERT_FILE": str(tls_files.ca),
            # Loopback only: no statsbeat, no control plane, retry files in the test's folder.
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
            "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
            "TMPDIR": str(tmp_path)}, *([] if first == "app" else ["worker"]))
        deadline = time.monotonic() + 30
        while not _has_all(receiver.envelopes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        envelopes = receiver.envelopes()
    assert seen["mode"] == "azure" and seen["enabled"] is True
    assert set(receiver.paths) == {"/v2.1/track"}
    assert {e["iKey"] for e in envelopes} == {key}
    by_name = {e["data"]["baseData"].get("name"): e for e in envelopes
               if e["data"]["baseType"] in ("RequestData", "RemoteDependencyData")}
    root, gate = by_name["release"], by_name["gate"]
    trace_id = ids.hex_trace_id(RELEASE)
    assert root["tags"]["ai.operation.id"] == gate["tags"]["ai.operation.id"] == trace_id
    # The distro's tracer provider took our id generator: the ids are the release's.
    assert root["data"]["baseData"]["id"] == f"{ids.release_span_id(RELEASE):016x}"
    assert gate["data"]["baseData"]["id"] == f"{ids.span_id(RELEASE, 'prod', 'gate', 0):016x}"
    assert gate["tags"]["ai.operation.parentId"] == \
        f"{ids.environment_span_id(RELEASE, 'prod'):016x}"
    assert gate["data"]["baseData"]["properties"]["release.id"] == RELEASE
    metrics = [e["data"]["baseData"]["metrics"][0] for e in envelopes
               if e["data"]["baseType"] == "MetricData"]
    assert {"release.outcomes", "release.lead_time"} <= {m["name"] for m in metrics}
    logs = [e["data"]["baseData"] for e in envelopes if e["data"]["baseType"] == "MessageData"]
    [done] = [log for log in logs if log["message"] == "release step done"]  # exported once
    assert done["properties"]["release.id"] == RELEASE


def test_an_otlp_endpoint_gets_the_release_trace_over_otlp_http() -> None:
    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        seen = run_app({"OTEL_EXPORTER_OTLP_ENDPOINT":
                        f"http://127.0.0.1:{server.server_address[1]}"})
    finally:
        server.shutdown()
        server.server_close()
    assert seen["mode"] == "otlp" and seen["enabled"] is True
    assert {path for path, _ in received} == {"/v1/traces", "/v1/metrics", "/v1/logs"}
    exported = [span for path, body in received if path == "/v1/traces"
                for resource in ExportTraceServiceRequest.FromString(body).resource_spans
                for scope in resource.scope_spans for span in scope.spans]
    assert {span.name for span in exported} == {"release", "gate"}
    assert {span.trace_id.hex() for span in exported} == {ids.hex_trace_id(RELEASE)}


def _has_all(envelopes: list[dict[str, Any]]) -> bool:
    kinds = {e["data"]["baseType"] for e in envelopes}
    return {"MetricData", "MessageData"} <= kinds and len(
        [e for e in envelopes if e["data"]["baseType"] != "MetricData"
         and e["data"]["baseType"] != "MessageData"]) >= 2


def test_host_json_asks_the_host_for_open_telemetry_and_devhost_takes_it() -> None:
    assert json.loads((REPO / "host.json").read_text())["telemetryMode"] == "OpenTelemetry"
    assert load_host_settings(REPO).hub_name == "ReleaseHub"  # the file still loads as a whole
