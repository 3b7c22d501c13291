"""A base for the sandbox's HTTP(S) servers that run an asyncio loop in a daemon thread.

Synchronous tests and the synchronous Azure and Kubernetes clients call these
servers, so each runs its own event loop on its own thread, listening on
127.0.0.1 (a free port when `port` is 0, the same one again on restart), over TLS
when `tls` is set. Subclasses answer requests in `_handle` and may extend
`_serve` / `_shutdown` for resources of their own.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from abc import ABC, abstractmethod
from typing import Self

from aiohttp import web

from sandbox.tls import TlsFiles
from sandbox.tools import Managed

START_TIMEOUT = 10.0


class ThreadedServer(Managed, ABC):
    """start()/stop()/context manager around a loop thread."""

    thread_name = "sandbox-server"
    port: int = 0
    tls: TlsFiles | None = None

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.ServerRunner | None = None

    @abstractmethod
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one request (runs on the server's loop)."""

    async def _serve(self) -> None:
        """Bind 127.0.0.1:`port` and start serving."""
        server_tls = None
        if self.tls is not None:
            server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_tls.load_cert_chain(self.tls.cert, self.tls.key)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        self._runner = web.ServerRunner(web.Server(self._handle), handle_signals=False,
                                        shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, listener, ssl_context=server_tls).start()

    async def _shutdown(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    def start(self) -> Self:
        """Start the loop thread and serve; a failed start leaves nothing running."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=self.thread_name, daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._serve(), loop).result(START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Shut down and end the loop thread; idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(START_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_TIMEOUT)
            loop.close()
            self._loop = self._thread = None
