"""A local stand-in for a Teams Workflows webhook: captures the messages posted to it.

Plain HTTP on 127.0.0.1 in a background thread. Every POST with a JSON body is stored
and answered 202 like Workflows does, unless `fail_next` told it to answer 429 (with
Retry-After) or 5xx for the next posts. `cards()` gives the Adaptive Card contents;
with `print_cards` each accepted card's headline(s), facts and links go to stdout (`make run`).
Does not render cards or check them against the Adaptive Card schema.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.threaded import ThreadedServer

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


class TeamsSink(ThreadedServer):
    """Webhook sink: `url`, `messages()`, `cards()`, `fail_next(...)`, `attempts`."""

    thread_name = "teams-sink"

    def __init__(self, port: int = 0, print_cards: bool = False,
                 write: Callable[[str], Any] | None = None) -> None:
        super().__init__()
        self.port = port
        self.print_cards = print_cards
        self._write = write
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._faults: list[tuple[int, str | None]] = []
        self.attempts = 0

    @property
    def url(self) -> str:
        """The webhook URL to store as the environment's secret."""
        return f"http://127.0.0.1:{self.port}/workflows/teams-webhook"

    def fail_next(self, count: int, status: int = 500, retry_after: str | None = None) -> None:
        """Answer the next `count` posts with `status` (and Retry-After, if given)."""
        with self._lock:
            self._faults.extend([(status, retry_after)] * count)

    def messages(self) -> list[dict[str, Any]]:
        """The accepted JSON bodies, oldest first."""
        with self._lock:
            return list(self._messages)

    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Card contents of every accepted message, oldest first."""
        return [attachment.get("content", {}) for message in self.messages()
                for attachment in message.get("attachments", [])
                if attachment.get("contentType") == CARD_CONTENT_TYPE]

    def clear(self) -> None:
        """Forget messages, pending faults and the attempt count."""
        with self._lock:
            self._messages.clear()
            self._faults.clear()
            self.attempts = 0

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "POST":
            return web.json_response({"error": "POST only"}, status=405)
        raw = await request.read()
        with self._lock:
            self.attempts += 1
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.json_response({"error": f"injected {status}"}, status=status,
                                     headers=headers)
        try:
            message = json.loads(raw)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(message, dict):
            return web.json_response({"error": "body is not a JSON object"}, status=400)
        with self._lock:
            self._messages.append(message)
        if self.print_cards:
            self._print(message)
        return web.Response(status=202)

    def _print(self, message: dict[str, Any]) -> None:
        write = self._write or (lambda line: print(line, file=sys.stdout, flush=True))
        for attachment in message.get("attachments", []):
            card = attachment.get("content", {})
            texts = [block.get("text", "") for block in card.get("body", [])
                     if block.get("type") == "TextBlock" and not block.get("isSubtle")]
            write(f"[teams] {' | '.join(texts) or '(card without text)'}")
            for block in card.get("body", []):
                if block.get("type") == "FactSet":
                    for fact in block.get("facts", []):
                        write(f"[teams]   {fact.get('title')}: {fact.get('value')}")
            for action in card.get("actions", []):
                if action.get("type") == "Action.OpenUrl":
                    write(f"[teams]   {action.get('title')}: {action.get('url')}")
