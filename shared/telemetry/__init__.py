"""The workflow's own telemetry: a release as one OpenTelemetry trace, its metrics and logs.

`setup.configure()` picks the exporters once at start (Application Insights, OTLP, or none);
`spans`, `metrics` and `logs` record through them and do nothing when none is configured.
Replay safety is the callers' part (orchestrations/tracing.py): see docs/telemetry.md.
"""
