"""The Function App: one `DFApp` that registers every blueprint; no logic of its own."""

import azure.durable_functions as df
import azure.functions as func

from activities import hello, registry
from orchestrations import hello_sequence
from triggers import health, orchestrators

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint in (health.bp, orchestrators.bp, hello_sequence.bp, hello.bp, registry.bp):
    app.register_functions(blueprint)
