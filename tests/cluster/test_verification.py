"""HTTP verification checks: pass, fail with evidence, time out; secrets never in evidence."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.cluster.errors import InvalidTarget
from shared.cluster.verification import HttpCheck, evaluate, run_check

TOKEN = "s3cr3t-verification-token"


class App(BaseHTTPRequestHandler):
    """A service under verification: /health is fine, /broken fails, /slow never answers."""

    seen_auth: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        App.seen_auth.append(self.headers.get("Authorization"))
        if self.path == "/slow":
            threading.Event().wait(2)
        status, body = {
            "/health": (200, {"status": "ok", "build": {"digest": "sha256:1"}}),
            "/broken": (503, {"status": "down", "echo": self.headers.get("Authorization")}),
        }.get(self.path, (404, {"status": "missing"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    server.daemon_threads = True
    server.handle_error = lambda *args: None  # the /slow client hung up: expected, not news
    threading.Thread(target=server.serve_forever, daemon=True).start()
    App.seen_auth = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_passing_check_sends_the_resolved_header(app: str) -> None:
    check = HttpCheck.from_dict({"name": "health", "url": f"{app}/health",
                                 "jsonField": "build.digest", "jsonEquals": "sha256:1",
                                 "headers": {"Authorization": "qa-verify-token"}})
    verdict = run_check(check, {"Authorization": f"Bearer {TOKEN}"})
    assert verdict.passed and len(verdict.attempts) == 1
    assert verdict.attempts[0].status == 200 and verdict.attempts[0].latency_ms > 0
    assert App.seen_auth == [f"Bearer {TOKEN}"]


def test_a_failing_check_gives_up_at_its_deadline_with_evidence_and_no_secret(app: str) -> None:
    check = HttpCheck.from_dict({"url": f"{app}/broken", "withinSeconds": 0.3,
                                 "intervalSeconds": 0.05})
    verdict = run_check(check, {"Authorization": f"Bearer {TOKEN}"})
    assert not verdict.passed
    assert verdict.reason.startswith("status 503, expected 200 (gave up after")
    assert len(verdict.attempts) >= 2
    assert all(a.status == 503 for a in verdict.attempts)
    assert '"status": "down"' in verdict.attempts[0].excerpt
    assert TOKEN not in json.dumps(verdict.to_dict())


def test_a_check_that_never_answers_times_out(app: str) -> None:
    check = HttpCheck.from_dict({"url": f"{app}/slow", "withinSeconds": 0.4,
                                 "attemptTimeoutSeconds": 0.2, "intervalSeconds": 0.05})
    verdict = run_check(check, {})
    assert not verdict.passed
    assert verdict.attempts[0].reason == "request failed: ReadTimeout"
    assert verdict.attempts[0].status is None


@pytest.mark.parametrize("check, status, body, expected", [
    (HttpCheck("c", "http://x"), 200, "", (True, "status 200 as expected")),
    (HttpCheck("c", "http://x", expect_status=204), 200, "", (False, "status 200, expected 204")),
    (HttpCheck("c", "http://x", body_contains="ready"), 200, "not yet",
     (False, "body does not contain 'ready'")),
    (HttpCheck("c", "http://x", json_field="a.b"), 200, "[]",
     (False, "JSON field 'a.b' is missing")),
    (HttpCheck("c", "http://x", json_field="a"), 200, "oops", (False, "body is not JSON")),
    (HttpCheck("c", "http://x", json_field="a", json_equals=2), 200, '{"a": 1}',
     (False, "JSON field 'a' is 1, expected 2")),
])
def test_evaluate(check: HttpCheck, status: int, body: str, expected: tuple) -> None:
    assert evaluate(check, status, body) == expected


@pytest.mark.parametrize("data, reason", [
    ({"url": "ftp://x"}, "url must be http"),
    ({"url": "http://x", "headers": {"A": 1}}, "headers map names to secret names"),
    ({"url": "http://x", "withinSeconds": "soon"}, "could not convert"),
    ("http://x", "must be a JSON object"),
])
def test_bad_checks_are_refused(data: object, reason: str) -> None:
    with pytest.raises(InvalidTarget, match=reason):
        HttpCheck.from_dict(data)
