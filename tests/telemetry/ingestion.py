"""An Application Insights ingestion endpoint over TLS on loopback: it takes what the Azure
Monitor exporter posts (`POST /v2.1/track`, a JSON array of envelopes, gzip or not), keeps the
envelopes and answers as the service does (`itemsReceived`, `itemsAccepted`, `errors`)."""

from __future__ import annotations

import gzip
import json
import threading
from typing import Any

from aiohttp import web

from sandbox.threaded import ThreadedServer
from sandbox.tls import TlsFiles


class IngestionReceiver(ThreadedServer):
    """Records every envelope posted to `/v2.1/track`; anything else is a 404."""

    thread_name = "ingestion-receiver"

    def __init__(self, tls: TlsFiles) -> None:
        super().__init__()
        self.tls = tls
        self.paths: list[str] = []
        self._envelopes: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def connection_string(self, instrumentation_key: str) -> str:
        return (f"InstrumentationKey={instrumentation_key};IngestionEndpoint={self.endpoint};"
                f"LiveEndpoint={self.endpoint}")

    def envelopes(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._envelopes)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.paths.append(request.path)
        if request.method != "POST" or request.path != "/v2.1/track":
            return web.Response(status=404)
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        items = json.loads(body)
        items = items if isinstance(items, list) else [items]
        with self._lock:
            self._envelopes.extend(items)
        return web.json_response({"itemsReceived": len(items), "itemsAccepted": len(items),
                                  "errors": []})
