"""`releasectl` at the HTTP boundary: where the function key goes, and odd answers.

A recording server on loopback stands in for the app (and for another host named by an
approval link), so the test sees exactly which headers each request carried.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from aiohttp import web

from sandbox.threaded import ThreadedServer
from tests.cli.cli_runner import ctl, one_error_line

KEY = "function-key-s3cret"


class Recorder(ThreadedServer):
    """Answers each request with the next canned (status, body, delay) and records it."""

    thread_name = "releasectl-recorder"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answers: list[tuple[int, str, float]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests.append((request.method, str(request.rel_url), dict(request.headers),
                              await request.read()))
        status, body, delay = self.answers.pop(0) if self.answers else (200, "[]", 0.0)
        await asyncio.sleep(delay)
        return web.Response(status=status, text=body,
                            content_type="application/json" if body[:1] in "[{" else
                            "text/plain")


@pytest.fixture
def app() -> Iterator[Recorder]:
    with Recorder() as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    with Recorder() as server:
        yield server


def test_the_key_goes_to_the_api_and_never_to_another_host(app: Recorder,
                                                           elsewhere: Recorder) -> None:
    code, _, err = ctl("list", "--service", "delivery", "--key", KEY, url=app.url)
    assert (code, err) == (0, "")
    (method, path, headers, _), = app.requests
    assert (method, path) == ("GET", "/api/releases?service=delivery")
    assert headers["x-functions-key"] == KEY

    verdict = {"releaseId": "delivery-1", "environment": "prod", "decision": "approve",
               "counted": True, "outcome": "Approved", "reason": None, "by": "ann"}
    elsewhere.answers.append((200, json.dumps(verdict), 0.0))
    link = f"{elsewhere.url}/api/releases/delivery-1/approvals/prod?token=abc.def"
    code, out, err = ctl("approve", link, "--comment", "ok", "--key", KEY, url=app.url)
    assert (code, err) == (0, ""), out
    assert out.startswith("Approve by ann counted for delivery-1 in prod: Approved")
    (method, path, headers, body), = elsewhere.requests
    assert (method, path) == ("POST", "/api/releases/delivery-1/approvals/prod?token=abc.def")
    assert "x-functions-key" not in {name.lower() for name in headers}
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"decision": "approve", "comment": "ok"}

    app.answers.append((200, json.dumps(verdict), 0.0))
    code, _, _ = ctl("approve", "delivery-1", "--token", "abc.def", "--environment", "prod",
                     "--key", KEY, url=app.url)
    assert code == 0
    assert app.requests[-1][1] == "/api/releases/delivery-1/approvals/prod?token=abc.def"
    assert app.requests[-1][2]["x-functions-key"] == KEY


@pytest.mark.parametrize("status, body, words", [
    (502, "upstream sad", "HTTP 502 Bad Gateway"),
    (401, "", "HTTP 401 Unauthorized: the API wants a function key (--key or RELEASE_API_KEY)"
          " or a signed-in identity"),
    (409, json.dumps({"error": "operation rollback:delivery:prod:1 is still running in prod;"
                               " wait for it to finish"}),
     "operation rollback:delivery:prod:1 is still running in prod; wait for it to finish"),
])
def test_failures_are_exit_1_with_one_line(app: Recorder, status: int, body: str,
                                           words: str) -> None:
    app.answers.append((status, body, 0.0))
    code, out, err = ctl("rollback", "delivery-1", "-e", "prod", "-r", "why", "--key", KEY,
                         url=app.url)
    assert code == 1 and out == ""
    assert one_error_line(err) == words
    assert KEY not in err
    assert json.loads(app.requests[0][3]) == {"environment": "prod", "reason": "why"}


def test_a_decision_not_counted_and_one_not_yet_taken(app: Recorder) -> None:
    refused = {"releaseId": "delivery-1", "environment": "prod", "decision": "approve",
               "counted": False, "outcome": "Refused", "by": "bob",
               "reason": "bob is not an approver of prod",
               "error": "bob is not an approver of prod"}
    app.answers.append((409, json.dumps(refused), 0.0))
    code, out, err = ctl("approve", f"{app.url}/api/releases/delivery-1/approvals/prod?token=t")
    assert (code, out) == (1, "")
    assert one_error_line(err) == "bob is not an approver of prod"

    pending = {"releaseId": "delivery-1", "environment": "prod", "decision": "reject",
               "counted": False, "outcome": "Pending",
               "reason": "submitted; the release has not taken it yet"}
    app.answers.append((202, json.dumps(pending), 0.0))
    code, out, err = ctl("reject", "--link", f"{app.url}/api/releases/delivery-1/approvals/"
                                             "prod?token=t")
    assert (code, err) == (0, "")
    assert "the release has not taken it yet" in out


def test_a_slow_api_is_unreachable_exit_3(app: Recorder) -> None:
    app.answers.append((200, "[]", 5.0))
    code, out, err = ctl("list", "--timeout", "0.3", url=app.url)
    assert (code, out) == (3, "")
    assert one_error_line(err) == f"cannot reach the release API at {app.url}: timed out"


def test_resolve_passes_the_choice_and_show_says_what_the_release_waits_for(
        app: Recorder) -> None:
    passed = {"releaseId": "delivery-1", "environment": "prod", "decision": "keep",
              "by": "oncall@example.com", "reason": "looking live",
              "statusUri": f"{app.url}/api/releases/delivery-1"}
    app.answers.append((202, json.dumps(passed), 0.0))
    code, out, err = ctl("resolve", "delivery-1", "-e", "prod", "--keep", "-r", "looking live",
                         url=app.url)
    assert (code, err) == (0, "")
    assert out.startswith("Passed on: keep of the failed deployment of delivery-1 in prod, by"
                          " oncall@example.com")
    (method, path, _, body), = app.requests
    assert (method, path) == ("POST", "/api/releases/delivery-1/resolve")
    assert json.loads(body) == {"environment": "prod", "decision": "keep",
                                "reason": "looking live"}

    shown = {"releaseId": "delivery-1", "service": "delivery", "state": "Running",
             "durable": {"runtimeStatus": "Running", "customStatus": {"waitingFor": {
                 "kind": "failure", "environment": "prod", "deadline": "2026-11-22T10:00:00Z",
                 "onDeadline": "rollback", "failure": "rollout failed: CrashLoopBackOff"}}}}
    app.answers.append((200, json.dumps(shown), 0.0))
    code, out, err = ctl("show", "delivery-1", url=app.url)
    assert (code, err) == (0, "")
    assert "Failed deployment in prod waits for a decision until" in out
    assert "(then: rollback): rollout failed: CrashLoopBackOff" in " ".join(out.split())
    assert "releasectl resolve RELEASE_ID -e prod --rollback|--keep -r REASON" in out


def test_resolve_needs_one_choice_and_a_reason(app: Recorder) -> None:
    for argv in (("resolve", "delivery-1", "-e", "prod", "-r", "why"),
                 ("resolve", "delivery-1", "-e", "prod", "--keep", "--rollback", "-r", "why"),
                 ("resolve", "delivery-1", "-e", "prod", "--keep")):
        code, out, _ = ctl(*argv, url=app.url)
        assert (code, out) == (2, "")
    assert app.requests == []


def test_retry_posts_the_reason_and_says_how_to_follow(app: Recorder) -> None:
    started = {"releaseId": "delivery-1", "retry": 2, "by": "ann@example.com",
               "reason": "signing key set", "after": {"outcome": "Failed"},
               "statusUri": f"{app.url}/api/releases/delivery-1"}
    app.answers.append((202, json.dumps(started), 0.0))
    code, out, err = ctl("retry", "delivery-1", "-r", "signing key set", url=app.url)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "Retrying delivery-1 (retry 2, after Failed) by ann@example.com: signing key set",
        "Follow it: releasectl show delivery-1"]
    (method, path, _, body), = app.requests
    assert (method, path, json.loads(body)) == ("POST", "/api/releases/delivery-1/retry",
                                                {"reason": "signing key set"})

    app.answers.append((202, json.dumps(started), 0.0))
    code, out, _ = ctl("retry", "delivery-1", "--json", url=app.url)
    assert code == 0 and json.loads(out) == started
    assert app.requests[-1][3] == b""  # no reason, no body

    refused = "delivery-1 completed; there is nothing to retry"
    app.answers.append((409, json.dumps({"error": refused}), 0.0))
    code, out, err = ctl("retry", "delivery-1", url=app.url)
    assert (code, out) == (1, "")
    assert one_error_line(err) == refused


def test_a_server_that_is_not_the_api_is_named_not_shown_as_no_releases(app: Recorder) -> None:
    """Another server at --url answering 200 without the API's JSON: exit 2, one line."""
    app.answers.append((200, "<html>It works!</html>", 0.0))
    code, out, err = ctl("list", url=app.url)
    assert (code, out) == (2, "")
    assert one_error_line(err) == (f"{app.url} did not answer as the release API does "
                                   "(expected a JSON list of releases)")

    app.answers.append((200, "<html>It works!</html>", 0.0))
    code, out, err = ctl("show", "delivery-1", url=app.url)
    assert (code, out) == (2, "")
    assert one_error_line(err) == (f"{app.url} did not answer as the release API does "
                                   "(expected a JSON object)")


CHART_DIGEST = "sha256:" + "c1" * 32


def test_show_lists_each_helm_environment_chart_digest_and_revision(app: Recorder) -> None:
    helm = {"qa": {"chart": "delivery", "version": "1.0.0", "digest": CHART_DIGEST,
                   "revision": 2},
            "prod": {"chart": "delivery", "version": "1.0.0", "digest": CHART_DIGEST,
                     "revision": 1}}
    shown = {"releaseId": "delivery-1", "service": "delivery", "state": "Completed",
             "helm": helm, "durable": {"runtimeStatus": "Completed",
                                       "customStatus": {"helm": helm}}}
    app.answers.append((200, json.dumps(shown), 0.0))
    code, out, err = ctl("show", "delivery-1", url=app.url)
    assert (code, err) == (0, "")
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "ENVIRONMENT CHART VERSION CHART DIGEST REVISION" in lines
    assert f"qa delivery 1.0.0 {CHART_DIGEST} 2" in lines
    assert f"prod delivery 1.0.0 {CHART_DIGEST} 1" in lines

    app.answers.append((200, json.dumps(shown), 0.0))
    code, out, err = ctl("show", "delivery-1", "--json", url=app.url)
    assert (code, err) == (0, "")
    assert json.loads(out) == shown  # as the API said it

    older = {**shown, "helm": None}  # an API without the key: the custom status says it
    app.answers.append((200, json.dumps(older), 0.0))
    assert f"qa delivery 1.0.0 {CHART_DIGEST} 2" in [
        " ".join(line.split()) for line in ctl("show", "delivery-1", url=app.url)[1]
        .splitlines()]


def test_show_of_a_deployment_target_has_no_helm_table(app: Recorder) -> None:
    shown = {"releaseId": "delivery-1", "service": "delivery", "state": "Completed",
             "durable": {"runtimeStatus": "Completed", "customStatus": {"step": "done"}}}
    app.answers.append((200, json.dumps(shown), 0.0))
    code, out, err = ctl("show", "delivery-1", url=app.url)
    assert (code, err) == (0, "") and "delivery-1" in out
    assert "Helm" not in out and "CHART" not in out
