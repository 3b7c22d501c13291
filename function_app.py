"""The Function App: one `DFApp` that registers every blueprint; no logic of its own.

At start-up it sets up the app's own telemetry (shared/telemetry: Application Insights, an
OTLP endpoint, or nothing), then reports app settings whose Key Vault reference did not
resolve, and approval settings the policy's gates cannot work with (both as configuration
errors, names only).
"""

import azure.durable_functions as df
import azure.functions as func

from activities import analysis, charts, deploy, hello, ledger, registry, strategies, turns
from activities import approvals as approval_steps
from activities import operations as operation_steps
from orchestrations import hello_sequence, operations, release
from shared.readiness import log_app_problems
from shared.secrets.references import log_unresolved_references
from shared.telemetry.setup import configure as configure_telemetry
from triggers import approvals as approval_pages
from triggers import (
    dashboard,
    failure_decisions,
    health,
    metrics,
    orchestrators,
    reconciler,
    registry_events,
    releases,
)

configure_telemetry()
log_unresolved_references()
log_app_problems()

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

BLUEPRINTS = (
    health.bp, orchestrators.bp, registry_events.bp, reconciler.bp, releases.bp,  # triggers
    dashboard.bp, approval_pages.bp, failure_decisions.bp, metrics.bp,
    hello_sequence.bp, release.bp, operations.bp,  # orchestrations
    hello.bp, registry.bp, deploy.bp, ledger.bp, operation_steps.bp,  # activities
    approval_steps.bp, turns.bp, charts.bp, analysis.bp, strategies.bp,
)

for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
