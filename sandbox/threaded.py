"""A base for the sandbox's servers that run an asyncio loop in a daemon thread.

Synchronous tests and the synchronous Azure and Kubernetes clients call these
servers, so each runs its own event loop on its own thread. Subclasses provide
`_serve` (bind and start listening) and `_shutdown` (close what `_serve` opened).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from typing import Self

from sandbox.tools import Managed

START_TIMEOUT = 10.0


class ThreadedServer(Managed, ABC):
    """start()/stop()/context manager around a loop thread."""

    thread_name = "sandbox-server"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    async def _serve(self) -> None:
        """Bind and start serving (runs on the server's loop)."""

    @abstractmethod
    async def _shutdown(self) -> None:
        """Close what `_serve` opened (runs on the server's loop)."""

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
