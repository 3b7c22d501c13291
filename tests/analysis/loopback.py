"""Small HTTP servers on loopback for the analysis tests: a /metrics target for Prometheus to
scrape, an API front that checks a bearer token before passing a query on, and a raw TCP
server for answers no well-behaved HTTP server gives."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class Seen:
    """One request a server received."""

    path: str
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Seen], Reply]


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 answering GETs with `handler`, recording each one."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[Seen] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen = Seen(self.path, dict(self.headers.items()))
                outer.seen.append(seen)
                reply = outer.handler(seen)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


class MetricsTarget:
    """`/metrics` in Prometheus's text format: two fixed counters, and request counters that
    grow by 8 (code 200) and 2 (code 500) at each scrape, so their error rate is exactly 0.2."""

    def __init__(self) -> None:
        self.scrapes = 0
        self._lock = threading.Lock()

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != "/metrics":
            return Reply(404, b"not found\n", "text/plain")
        with self._lock:
            self.scrapes += 1
            n = self.scrapes
        text = (
            "# TYPE demo_fixed_total counter\n"
            'demo_fixed_total{code="200"} 42\n'
            'demo_fixed_total{code="500"} 7\n'
            "# TYPE demo_http_requests_total counter\n"
            f'demo_http_requests_total{{code="200"}} {8 * n}\n'
            f'demo_http_requests_total{{code="500"}} {2 * n}\n'
            "# TYPE demo_zero gauge\n"
            "demo_zero 0\n"
        )
        return Reply(200, text.encode(), "text/plain; version=0.0.4")


class BearerFront:
    """Passes a GET on to `upstream` when `Authorization` is `Bearer <token>`; else 401, echoing
    the header it got (as a careless server might) so tests see that errors redact it."""

    def __init__(self, upstream: str, token: str) -> None:
        self.upstream = upstream
        self.token = token

    def __call__(self, seen: Seen) -> Reply:
        got = seen.headers.get("Authorization", "")
        if got != f"Bearer {self.token}":
            return Reply(401, f'{{"message": "bad token: {got}"}}'.encode())
        try:
            with urllib.request.urlopen(self.upstream + seen.path, timeout=5) as answer:
                return Reply(answer.status, answer.read())
        except urllib.error.HTTPError as refused:
            return Reply(refused.code, refused.read())


class RawServer:
    """A TCP server on 127.0.0.1 that reads each request's head and lets `answer` write raw
    bytes to the socket: chunked, trickling or cut-off answers."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    received = connection.recv(4096)
                    if not received:
                        break
                    head += received
                try:
                    self.answer(connection)
                except OSError:
                    pass  # the client hung up, as a client that gave up does

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
