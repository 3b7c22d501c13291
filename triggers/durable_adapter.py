"""The Durable client as the triggers use it.

`ClientDurable` is the client as ingestion and the reconciler use it
(`shared.ingest.service.Durable`); `decoded` reads the JSON values (input, output, custom
status) that the client hands back. Starts, raises and reads only what it is asked to.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.durable_functions as df


class ClientDurable:
    """The Durable client as ingestion uses it."""

    def __init__(self, client: df.DurableOrchestrationClient) -> None:
        self._client = client
        self.scope = _hub_scope(client)

    async def exists(self, instance_id: str) -> bool:
        return bool(await self._client.get_status(instance_id))

    async def start(self, orchestrator: str, instance_id: str, payload: Any) -> bool:
        try:
            await self._client.start_new(orchestrator, instance_id, payload)
            return True
        except Exception:  # the SDK raises a bare Exception; a concurrent start is not an error
            if await self.exists(instance_id):
                return False
            raise

    async def raise_event(self, instance_id: str, event: str, payload: Any) -> None:
        await self._client.raise_event(instance_id, event, payload)


def _hub_scope(client: df.DurableOrchestrationClient) -> str:
    """The host and task hub this client works on (its management key left out)."""
    url = urlsplit(client.create_http_management_payload("")["statusQueryGetUri"])
    hub = parse_qs(url.query).get("taskHub", [""])[0]
    return f"{url.netloc}{url.path}?taskHub={hub}"


def decoded(value: Any) -> Any:
    """A value Durable handed back: decoded already, or JSON text when it was encoded twice."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
