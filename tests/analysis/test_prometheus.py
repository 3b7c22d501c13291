"""The `prometheus` provider against a real Prometheus scraping a loopback /metrics target."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from sandbox.prometheus import LocalPrometheus
from shared.analysis.prometheus import (
    AZURE_MONITOR_PROMETHEUS_SCOPE,
    BearerToken,
    EntraIdentity,
    InvalidQuery,
    NoAuth,
    NoData,
    Number,
    PrometheusQuery,
    ProviderError,
    ProviderHttpError,
    ProviderUnreachable,
    QueryRejected,
    TokenUnavailable,
    UnusableResult,
    default_credential,
)
from tests.analysis.loopback import (
    BearerFront,
    LoopbackServer,
    MetricsTarget,
    RawServer,
    Reply,
    Seen,
)

JOB = "analysis-provider"
ERROR_RATE = (
    f'sum(rate(demo_http_requests_total{{job="{JOB}",code=~"5.."}}[10s]))'
    f' / sum(rate(demo_http_requests_total{{job="{JOB}"}}[10s]))'
)
TOKEN = "s3cret-Token-value"


@pytest.fixture(scope="module")
def scraped(prometheus: LocalPrometheus) -> Iterator[LocalPrometheus]:
    """The session's Prometheus with the demo target listed and scraped at least twice."""
    with LoopbackServer(MetricsTarget()) as target:
        prometheus.add_targets([{"targets": [target.host], "labels": {"job": JOB}}])
        prometheus.wait_for(f'count_over_time(demo_zero{{job="{JOB}"}}[1m]) >= 2')
        yield prometheus


class FakeCredential:
    """A TokenCredential that records the scopes it was asked for."""

    def __init__(self, token: str = "entra-access-token", fail: bool = False) -> None:
        self.token, self.fail = token, fail
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        self.scopes.append(scopes)
        if self.fail:
            raise ClientAuthenticationError("ManagedIdentityCredential: no identity endpoint\n"
                                            "  (IMDS unreachable)")
        return AccessToken(self.token, 4102444800)


def test_a_counter_value_is_the_number(scraped: LocalPrometheus) -> None:
    outcome = PrometheusQuery(scraped.url, f'demo_fixed_total{{job="{JOB}",code="500"}}').run()
    assert isinstance(outcome, Number)
    assert outcome.value == 7.0
    assert abs(outcome.at - datetime.now(UTC).timestamp()) < 60


def test_an_error_rate_from_rates_is_the_number(scraped: LocalPrometheus) -> None:
    outcome = PrometheusQuery(scraped.url, ERROR_RATE).run()
    assert isinstance(outcome, Number)
    assert outcome.value == pytest.approx(0.2)


def test_a_scalar_is_a_number(scraped: LocalPrometheus) -> None:
    outcome = PrometheusQuery(scraped.url + "/", f'scalar(sum(demo_fixed_total{{job="{JOB}"}}))'
                              ).run()
    assert isinstance(outcome, Number) and outcome.value == 49.0


def test_no_matching_series_is_no_data(scraped: LocalPrometheus) -> None:
    outcome = PrometheusQuery(scraped.url, f'demo_fixed_total{{job="{JOB}",code="418"}}').run()
    assert outcome == NoData("no series matched")


def test_nan_is_no_data(scraped: LocalPrometheus) -> None:
    outcome = PrometheusQuery(scraped.url, f'demo_zero{{job="{JOB}"}} / demo_zero').run()
    assert outcome == NoData("the value is NaN")


def test_an_evaluation_time_before_any_sample_is_no_data(scraped: LocalPrometheus) -> None:
    query = PrometheusQuery(scraped.url, f'demo_fixed_total{{job="{JOB}",code="500"}}')
    assert query.run(at=datetime.now(UTC) - timedelta(hours=2)) == NoData("no series matched")
    later = query.run(at=datetime.now(UTC) - timedelta(seconds=1))
    assert isinstance(later, Number) and later.value == 7.0
    with pytest.raises(InvalidQuery, match="timezone"):
        query.run(at=datetime(2026, 1, 1))


@pytest.mark.parametrize(("promql", "message"), [
    ("sum(", "rejected the query (bad_data): invalid parameter \"query\": 1:5: parse error: "
             "unclosed left parenthesis"),
    ("demo_fixed_total == on() group_left demo_fixed_total",
     "rejected the query (execution): "),
])
def test_a_query_prometheus_refuses_is_rejected_with_its_message(
        scraped: LocalPrometheus, promql: str, message: str) -> None:
    with pytest.raises(QueryRejected) as error:
        PrometheusQuery(scraped.url, promql).run()
    assert str(error.value).startswith(f"prometheus at {scraped.url} {message}")
    assert "\n" not in str(error.value)
    assert (error.value.failure, error.value.retryable) == ("rejected", False)


def test_several_series_are_not_one_number(scraped: LocalPrometheus) -> None:
    with pytest.raises(UnusableResult) as error:
        PrometheusQuery(scraped.url, f'demo_fixed_total{{job="{JOB}"}}').run()
    assert "gives 2 series (" in str(error.value)
    assert 'code="200"' in str(error.value) and "sum()" in str(error.value)
    assert error.value.failure == "bad-result"


def test_a_range_vector_is_not_one_number(scraped: LocalPrometheus) -> None:
    with pytest.raises(UnusableResult, match=r"gives a matrix, not one number \(wrap"):
        PrometheusQuery(scraped.url, f'demo_zero{{job="{JOB}"}}[5s]').run()


def test_a_stopped_prometheus_is_unreachable(tmp_path: Path) -> None:
    with LocalPrometheus(tmp_path) as stopped:
        url = stopped.url
    with pytest.raises(ProviderUnreachable) as error:
        PrometheusQuery(url, "up").run()
    assert str(error.value) == f"prometheus at {url} unreachable: Connection refused"
    assert error.value.retryable


def test_the_bearer_token_is_sent(scraped: LocalPrometheus) -> None:
    with LoopbackServer(BearerFront(scraped.url, TOKEN)) as front:
        outcome = PrometheusQuery(front.url, f'demo_fixed_total{{job="{JOB}",code="200"}}',
                                  BearerToken(TOKEN)).run()
    assert isinstance(outcome, Number) and outcome.value == 42.0
    (seen,) = front.seen
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.path.startswith("/api/v1/query?query=demo_fixed_total")


def test_a_refused_token_is_denied_and_never_repeated(scraped: LocalPrometheus) -> None:
    with LoopbackServer(BearerFront(scraped.url, TOKEN)) as front:
        with pytest.raises(ProviderHttpError) as error:
            PrometheusQuery(front.url, "up", BearerToken("wrong-" + TOKEN)).run()
        with pytest.raises(ProviderHttpError, match="HTTP 401"):
            PrometheusQuery(front.url, "up", NoAuth()).run()
    text = str(error.value)
    assert text == f'prometheus at {front.url} answered HTTP 401: {{"message": "bad token: ' \
                   'Bearer ***"}'
    assert TOKEN not in text and TOKEN not in repr(BearerToken(TOKEN))
    assert (error.value.status, error.value.failure, error.value.retryable) == (
        401, "denied", False)
    assert "Authorization" not in front.seen[1].headers


def test_entra_asks_the_managed_prometheus_scope(scraped: LocalPrometheus) -> None:
    credential = FakeCredential()
    with LoopbackServer(BearerFront(scraped.url, credential.token)) as front:
        outcome = PrometheusQuery(front.url, ERROR_RATE, EntraIdentity(credential)).run()
    assert isinstance(outcome, Number) and outcome.value == pytest.approx(0.2)
    assert credential.scopes == [("https://prometheus.monitor.azure.com/.default",)]
    assert AZURE_MONITOR_PROMETHEUS_SCOPE == "https://prometheus.monitor.azure.com/.default"
    assert front.seen[0].headers["Authorization"] == "Bearer entra-access-token"


def test_no_entra_token_is_denied_before_any_request() -> None:
    with LoopbackServer(lambda seen: Reply(500, b"")) as server:
        with pytest.raises(TokenUnavailable) as error:
            PrometheusQuery(server.url, "up", EntraIdentity(FakeCredential(fail=True))).run()
    assert str(error.value) == (
        f"prometheus at {server.url}: no Entra token for "
        "https://prometheus.monitor.azure.com/.default: ManagedIdentityCredential: no identity"
        " endpoint (IMDS unreachable)")
    assert error.value.failure == "denied"
    assert server.seen == []


def test_the_default_identity_is_one_credential_per_process() -> None:
    from azure.identity import DefaultAzureCredential

    assert isinstance(default_credential(), DefaultAzureCredential)
    assert default_credential() is default_credential()
    assert default_credential("client-a") is not default_credential()


@pytest.mark.parametrize(("reply", "error_type", "message", "failure"), [
    (Reply(502, b"<html>\n<h1>Bad Gateway</h1>\n</html>", "text/html"), ProviderHttpError,
     "answered HTTP 502: <html> <h1>Bad Gateway</h1> </html>", "unreachable"),
    (Reply(404, b"404 page not found", "text/plain"), ProviderHttpError,
     "answered HTTP 404: 404 page not found", "rejected"),
    (Reply(503, b'{"status":"error","errorType":"timeout","error":"query timed out"}'),
     ProviderHttpError, "answered HTTP 503 (timeout): query timed out", "unreachable"),
    (Reply(200, b"<html>login</html>", "text/html"), UnusableResult,
     "not a Prometheus API answer: '<html>login</html>'", "bad-result"),
    (Reply(200, b'{"status":"success","data":{"resultType":"string","result":[1,"x"]}}'),
     UnusableResult, "the query gives a string, not one number", "bad-result"),
    (Reply(200, b'{"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}}'),
     UnusableResult, "a sample that is not [time, value]: [1]", "bad-result"),
    (Reply(200, b" " * (1 << 20) + b"{}"), UnusableResult,
     "an answer of more than 1048576 bytes", "bad-result"),
])
def test_answers_that_are_not_a_number_say_why(
        reply: Reply, error_type: type[ProviderError], message: str, failure: str) -> None:
    with LoopbackServer(lambda seen: reply) as server:
        with pytest.raises(error_type) as error:
            PrometheusQuery(server.url, "up").run()
    assert str(error.value).startswith(f"prometheus at {server.url}")
    assert message in str(error.value)
    assert error.value.failure == failure


def test_a_silent_server_times_out() -> None:
    answer = threading.Event()

    def stall(seen: Seen) -> Reply:
        answer.wait(5)
        return Reply(200, b"{}")

    with LoopbackServer(stall) as server:
        with pytest.raises(ProviderUnreachable, match=r"unreachable: no answer within 0.3 s$"):
            PrometheusQuery(server.url, "up", timeout=0.3).run()
        answer.set()


def test_a_gzipped_answer_in_chunks_is_read_whole() -> None:
    body = gzip.compress(b'{"status":"success","data":{"resultType":"vector","result":'
                         b'[{"metric":{},"value":[1796570000.5,"0.25"]}]}}')
    pieces = [body[:10], body[10:20], body[20:]]

    def chunked(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.01)
        connection.sendall(b"0\r\n\r\n")

    with RawServer(chunked) as server:
        assert PrometheusQuery(server.url, "up").run() == Number(0.25, 1796570000.5)


def test_a_trickling_answer_meets_the_overall_timeout() -> None:
    def trickle(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(200):  # a byte every 50 ms: each read is quick, the answer never ends
            connection.sendall(b" ")
            time.sleep(0.05)

    with RawServer(trickle) as server:
        with pytest.raises(ProviderUnreachable, match=r"unreachable: no answer within 0.5 s$"):
            PrometheusQuery(server.url, "up", timeout=0.5).run()


def test_a_cut_off_answer_is_unreachable() -> None:
    def cut(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\"")

    with RawServer(cut) as server:
        with pytest.raises(ProviderUnreachable) as error:
            PrometheusQuery(server.url, "up").run()
    assert str(error.value) == f"prometheus at {server.url} unreachable: the connection " \
                               "broke before the answer was complete"


@pytest.mark.parametrize(("url", "query", "auth", "message"), [
    ("ftp://prom:9090", "up", NoAuth(), "expected http(s)://host"),
    ("http://", "up", NoAuth(), "expected http(s)://host"),
    ("http://prom:99999", "up", NoAuth(), "not a URL"),
    ("https://user:pw@prom.example", "up", NoAuth(), "holds credentials"),
    ("https://prom.example/?x=1", "up", NoAuth(), "takes no query"),
    ("https://prom.example/a b", "up", NoAuth(), "whitespace or control"),
    ("http://prom.example:9090", "up", BearerToken(TOKEN), "refusing to send a token in clear"),
    ("http://prom.example:9090", "up", EntraIdentity(FakeCredential()), "in clear"),
    ("https://prom.example", "  ", NoAuth(), "empty PromQL"),
    ("https://prom.example", "x" * 10_001, NoAuth(), "10001 characters, at most 10000"),
    ("https://prom.example", "up", BearerToken(""), "bearer token is empty or not one line"),
    ("https://prom.example", "up", BearerToken("a\nb"), "bearer token is empty or not one"),
])
def test_a_definition_that_cannot_be_sent_is_refused(
        url: str, query: str, auth: BearerToken | NoAuth | EntraIdentity, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message.replace("(", r"\(").replace(")", r"\)")):
        PrometheusQuery(url, query, auth)


def test_tokens_may_go_to_loopback_over_http() -> None:
    for host in ("127.0.0.1", "localhost", "[::1]"):
        assert PrometheusQuery(f"http://{host}:9090", "up", BearerToken(TOKEN)).endpoint == \
            f"http://{host}:9090/api/v1/query"
    with pytest.raises(InvalidQuery, match="timeout 0 s"):
        PrometheusQuery("https://prom.example", "up", timeout=0)
