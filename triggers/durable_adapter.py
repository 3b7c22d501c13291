"""The Durable client as the triggers use it.

`ClientDurable` is the client as ingestion and the reconciler use it
(`shared.ingest.service.Durable`); `ClientInstances` as the operations desk, the release
view and the approval desk use it (`Instances` in shared/releases/desk.py and view.py,
`Gates` in shared/approvals/desk.py), handing back `Instance`s; `decoded` reads the JSON
values (input, output, custom status) that the client hands back. Starts, raises and reads
only what it is asked to.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.durable_functions as df
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from shared.instances import Instance

ACTIVE = frozenset({OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running,
                    OrchestrationRuntimeStatus.ContinuedAsNew,
                    OrchestrationRuntimeStatus.Suspended})


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


class ClientInstances:
    """The Durable client as the operations and approval desks use it."""

    def __init__(self, client: df.DurableOrchestrationClient) -> None:
        self._client = client

    async def status(self, instance_id: str, show_input: bool = False) -> Instance | None:
        status = await durable_status(self._client, instance_id, show_input)
        return instance(status) if status is not None else None

    async def with_prefix(self, prefix: str) -> list[Instance]:
        return [instance(status)
                for status in await self._client.get_status_by(instance_id_prefix=prefix)]

    async def start(self, orchestrator: str, instance_id: str, payload: Any) -> None:
        await self._client.start_new(orchestrator, instance_id, payload)

    async def raise_event(self, instance_id: str, event: str, payload: Any) -> None:
        await self._client.raise_event(instance_id, event, payload)


def instance(status: Any) -> Instance:
    """The SDK's status of an instance as an `Instance`."""
    runtime = status.runtime_status
    return Instance(instance_id=status.instance_id or "", name=status.name,
                    runtime=getattr(runtime, "value", runtime),
                    input=decoded(status.input_), output=decoded(status.output),
                    custom_status=decoded(status.custom_status),
                    created=status.created_time, updated=status.last_updated_time)


async def durable_status(client: df.DurableOrchestrationClient, instance_id: str,
                         show_input: bool = False) -> Any:
    """The instance's Durable status, or None when there is no such instance."""
    status = await client.get_status(instance_id, show_input=show_input)
    return status if status else None


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
