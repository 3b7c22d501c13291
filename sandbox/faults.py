"""A TLS reverse proxy in front of the local registry that injects faults and counts traffic.

Runs its own asyncio loop in a background thread, so synchronous tests and the synchronous
Azure SDK can use it. Requests are forwarded unchanged (the Host header too: docker-registry
builds its absolute `Location` URLs from it, so they point back at the proxy) with request and
response bodies streamed in both directions. Redirects are passed on, never followed.
Knows nothing about promotion itself; it only makes the registry misbehave on demand.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from sandbox.threaded import ThreadedServer
from sandbox.tls import TlsFiles

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "expect", "content-length",
})
OCI_ERROR_CODES = {
    400: "UNSUPPORTED", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NAME_UNKNOWN",
    429: "TOOMANYREQUESTS", 500: "UNKNOWN", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
}
CHUNK = 256 * 1024


@dataclass(frozen=True)
class ProxyStats:
    """Traffic the proxy saw since the last reset (injected and dropped requests included)."""

    requests: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    blob_request_bytes: int = 0
    blob_response_bytes: int = 0
    mounts: int = 0
    injected: int = 0
    dropped: int = 0


@dataclass
class _Fault:
    remaining: int
    method: str | None
    path_contains: str | None
    status: int | None = None
    retry_after: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in path)
        )


class FaultProxy(ThreadedServer):
    """Forwards HTTPS requests to `upstream`, except those it was told to fail."""

    thread_name = "fault-proxy"

    def __init__(self, upstream: str, tls: TlsFiles, port: int = 0) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.tls = tls
        self.port = port
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._refuse_mounts = False
        self._counts: Counter[str] = Counter()
        self._methods: Counter[str] = Counter()
        self._session: aiohttp.ClientSession | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """`https://127.0.0.1:PORT`."""
        return f"https://{self.host}"

    def inject(
        self,
        status: int,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` and an OCI error body."""
        with self._lock:
            self._faults.append(_Fault(times, method, path_contains, status, retry_after))

    def drop_connections(
        self, times: int = 1, *, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Close the connection of the next `times` matching requests without answering."""
        with self._lock:
            self._faults.append(_Fault(times, method, path_contains))

    def refuse_mounts(self, enabled: bool = True) -> None:
        """Forward mount requests without `mount`/`from`, so the registry opens an upload (202)."""
        with self._lock:
            self._refuse_mounts = enabled

    def stats(self) -> ProxyStats:
        with self._lock:
            return ProxyStats(by_method=dict(self._methods), **self._counts)

    def reset_stats(self) -> None:
        with self._lock:
            self._counts.clear()
            self._methods.clear()

    def reset(self) -> None:
        """Forget pending faults, accept mounts again and zero the statistics."""
        with self._lock:
            self._faults.clear()
            self._refuse_mounts = False
        self.reset_stats()

    async def _serve(self) -> None:
        client_tls = ssl.create_default_context(cafile=str(self.tls.ca))
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_tls, limit=64),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        )
        await super()._serve()

    async def _shutdown(self) -> None:
        await super()._shutdown()
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.rel_url.raw_path
        params = [part for part in request.rel_url.raw_query_string.split("&") if part]
        is_mount = (
            request.method == "POST"
            and path.endswith("/blobs/uploads/")
            and any(part.startswith("mount=") for part in params)
        )
        fault, refuse = self._record(request.method, path, is_mount)
        if fault is not None and fault.status is None:
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # aiohttp ends the handler without writing a response
        if fault is not None and fault.status is not None:
            return _error_response(fault.status, fault.retry_after)
        if is_mount and refuse:
            params = [part for part in params if part.split("=", 1)[0] not in ("mount", "from")]
        query = "&".join(params)
        url = URL(f"{self.upstream}{path}" + (f"?{query}" if query else ""), encoded=True)
        try:
            return await self._forward(request, url, is_blob="/blobs/" in path)
        except aiohttp.ClientConnectorError as error:
            return _error_response(502, None, f"upstream {self.upstream} unreachable: {error}")

    async def _forward(
        self, request: web.BaseRequest, url: URL, is_blob: bool
    ) -> web.StreamResponse:
        headers = CIMultiDict(
            (name, value) for name, value in request.headers.items()
            if name.lower() not in HOP_BY_HOP
        )
        data = None
        if request.body_exists:
            if request.headers.get("Expect", "").lower() == "100-continue":
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if request.content_length is not None:
                headers["Content-Length"] = str(request.content_length)
            data = self._stream_request(request, is_blob)
        assert self._session is not None
        async with self._session.request(
            request.method, url, headers=headers, data=data, allow_redirects=False
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            if upstream.content_length is not None and upstream.status not in (204, 304):
                response.content_length = upstream.content_length
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    if is_blob:
                        self._add("blob_response_bytes", len(chunk))
                    await response.write(chunk)
            await response.write_eof()
            return response

    async def _stream_request(
        self, request: web.BaseRequest, is_blob: bool
    ) -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(CHUNK):
            if is_blob:
                self._add("blob_request_bytes", len(chunk))
            yield chunk

    def _record(self, method: str, path: str, is_mount: bool) -> tuple[_Fault | None, bool]:
        with self._lock:
            self._counts["requests"] += 1
            self._methods[method] += 1
            self._counts["mounts"] += is_mount
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None:
                fault.remaining -= 1
                self._counts["injected" if fault.status else "dropped"] += 1
                self._faults = [f for f in self._faults if f.remaining > 0]
            return fault, self._refuse_mounts

    def _add(self, counter: str, amount: int) -> None:
        with self._lock:
            self._counts[counter] += amount


def _error_response(
    status: int, retry_after: str | None, message: str = "injected by FaultProxy"
) -> web.Response:
    code = OCI_ERROR_CODES.get(status, "UNKNOWN")
    body = {"errors": [{"code": code, "message": f"{message} ({status})", "detail": None}]}
    headers = {"Docker-Distribution-API-Version": "registry/2.0"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )
