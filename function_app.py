"""The Function App: one `DFApp` that registers every blueprint; no logic of its own.

At start-up it reports app settings whose Key Vault reference did not resolve.
"""

import azure.durable_functions as df
import azure.functions as func

from activities import deploy, hello, ledger, registry
from orchestrations import hello_sequence, release
from shared.secrets.references import log_unresolved_references
from triggers import health, orchestrators, reconciler, registry_events

log_unresolved_references()

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

BLUEPRINTS = (
    health.bp, orchestrators.bp, registry_events.bp, reconciler.bp,  # triggers
    hello_sequence.bp, release.bp,  # orchestrations
    hello.bp, registry.bp, deploy.bp, ledger.bp,  # activities
)

for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
