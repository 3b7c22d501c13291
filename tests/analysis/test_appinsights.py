"""The App Insights provider: the real `azure-monitor-query` client against the Logs API
protocol fake over TLS (sandbox/monitor_logs.py). The fake is not a KQL engine: tests set
its answer and assert the query that was sent and the number or error that came back.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.monitor.query import LogsQueryClient

from sandbox.monitor_logs import (
    DEFAULT_TENANT,
    LOGS_AUDIENCE,
    EntraTokenFake,
    LogsQuery,
    MonitorLogsFake,
    Table,
    mint_token,
)
from sandbox.tls import TlsFiles
from sandbox.tools import free_port
from shared.analysis.appinsights import (
    AppInsightsError,
    AppInsightsQuery,
    Failure,
    InvalidAppInsightsQuery,
    LogsConnection,
    default_credential,
)

RESOURCE = ("/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/delivery-rg"
            "/providers/microsoft.insights/components/delivery-ai")
WORKSPACE = "7e4b0c1a-3f5d-4b8e-9a61-2c7f9d0e4b13"
KQL = ("requests | where cloud_RoleName == 'delivery' "
       "| summarize failed = countif(success == false), total = count() "
       "| extend failure_rate = todouble(failed) / total")
FIVE_MINUTES = timedelta(minutes=5)
RATE_TABLE = Table((("failed", "long"), ("total", "long"), ("failure_rate", "real")),
                   ((3, 120, 0.025), (9, 9, 1.0)))


@pytest.fixture
def logs(tls_files: TlsFiles) -> Iterator[MonitorLogsFake]:
    with MonitorLogsFake(tls_files) as fake:
        yield fake


@pytest.fixture
def credential(logs: MonitorLogsFake) -> EntraTokenFake:
    return logs.credential()


@pytest.fixture
def query(logs: MonitorLogsFake, credential: EntraTokenFake,
          tls_files: TlsFiles) -> AppInsightsQuery:
    """The resource query of these tests, against the fake, without retry pauses."""
    return AppInsightsQuery(KQL, "failure_rate", FIVE_MINUTES, resource_id=RESOURCE,
                            endpoint=logs.endpoint, credential=credential,
                            connection=LogsConnection(ca_bundle=str(tls_files.ca), retries=0,
                                                      backoff_factor=0.0))


def failure_of(query: AppInsightsQuery) -> AppInsightsError:
    with pytest.raises(AppInsightsError) as info:
        query.run()
    return info.value


def test_the_named_column_of_the_first_row_comes_back(
    logs: MonitorLogsFake, query: AppInsightsQuery, credential: EntraTokenFake
) -> None:
    logs.answer(RATE_TABLE)

    result = query.run()

    assert (result.value, result.rows, result.no_data) == (0.025, 2, False)
    assert result.summary == "failure_rate = 0.025 (first of 2 rows)"
    assert logs.queries() == [LogsQuery("resource", RESOURCE, KQL, "PT300.0S")]
    # the token was asked for the Logs API, not for the endpoint the client was pointed at
    assert credential.scopes == [(f"{LOGS_AUDIENCE}/.default",)]


def test_a_workspace_is_queried_by_its_id_over_a_start_and_end(
    logs: MonitorLogsFake, query: AppInsightsQuery
) -> None:
    logs.answer_value("p95_ms", 310, "long", target=WORKSPACE)
    logs.answer_value("p95_ms", 9999, "long")  # any other target
    start = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
    on_workspace = replace(query, resource_id=None, workspace_id=WORKSPACE, column="p95_ms",
                           kql="requests | summarize p95_ms = percentile(duration, 95)",
                           timespan=(start, start + FIVE_MINUTES))

    assert on_workspace.run().value == 310.0
    [sent] = logs.queries()
    assert (sent.kind, sent.target, sent.query) == ("workspace", WORKSPACE, on_workspace.kql)
    assert sent.timespan == "2026-12-06T16:00:00.000Z/2026-12-06T16:05:00.000Z"


def test_answers_are_per_target_and_the_service_may_wait_as_asked(
    logs: MonitorLogsFake, query: AppInsightsQuery
) -> None:
    logs.answer_value("failure_rate", 0.5, target=RESOURCE.upper())  # ids are case-insensitive
    patient = replace(query, connection=replace(query.connection, server_timeout=120))

    assert patient.run().value == 0.5
    assert logs.queries()[0].prefer == "wait=120"


@pytest.mark.parametrize(("tables", "summary", "rows"), [
    ((Table((("failure_rate", "real"),)),), "no data: the query returned no rows", 0),
    ((Table((("failure_rate", "real"),), ((None,), (0.5,))),),
     "no data: failure_rate is empty in the first row", 2),
    ((Table((("failure_rate", "real"),), (("NaN",),)),),
     "no data: failure_rate is empty in the first row", 1),
    ((), "no data: the query returned no table", 0),
])
def test_no_rows_or_an_empty_value_is_no_data(
    logs: MonitorLogsFake, query: AppInsightsQuery, tables: tuple[Table, ...], summary: str,
    rows: int,
) -> None:
    logs.answer(*tables)

    result = query.run()

    assert (result.value, result.no_data, result.summary, result.rows) == (
        None, True, summary, rows)


def test_a_kql_error_is_the_evidence_text_on_one_line(
    logs: MonitorLogsFake, query: AppInsightsQuery
) -> None:
    logs.syntax_error("Query could not be parsed at '|' on line [1,9]\n  (token: '|')")

    error = failure_of(query)

    assert error.failure is Failure.REJECTED
    assert error.reason == ("the query was rejected (HTTP 400 BadArgumentError: Query could "
                            "not be parsed at '|' on line [1,9] (token: '|'))")
    assert str(error) == f"App Insights query on resource {RESOURCE}: {error.reason}"
    assert logs.queries()[0].query == KQL


def test_a_long_service_message_is_shortened(
    logs: MonitorLogsFake, query: AppInsightsQuery
) -> None:
    logs.reject(400, inner=[("SemanticError", "Failed to resolve column " + "x" * 1000)])

    reason = failure_of(query).reason

    assert reason.endswith("x…)") and len(reason) < 400 and "\n" not in reason
    assert "SemanticError" not in reason and "Failed to resolve column xxx" in reason


def test_a_token_for_another_audience_is_refused(
    logs: MonitorLogsFake, query: AppInsightsQuery, credential: EntraTokenFake
) -> None:
    # What azure-monitor-query 2.x asks for when no audience is passed: the endpoint's scope.
    error = failure_of(replace(query, audience=logs.endpoint))

    assert error.failure is Failure.DENIED
    assert "HTTP 403 InvalidTokenError" in error.reason
    assert error.reason.endswith(f"the token was for {logs.endpoint}")
    assert credential.scopes == [(f"{logs.endpoint}/.default",)]
    assert logs.queries() == [] and logs.counts() == (1, 1)


def test_the_sdk_asks_for_the_endpoints_scope_unless_given_an_audience(
    logs: MonitorLogsFake, credential: EntraTokenFake, tls_files: TlsFiles
) -> None:
    """Pins the SDK behaviour the provider guards against by always passing `audience`."""
    client = LogsQueryClient(credential, endpoint=logs.endpoint, retry_total=0,
                             connection_verify=str(tls_files.ca))
    with client, pytest.raises(HttpResponseError) as info:
        client.query_workspace(WORKSPACE, "print 1", timespan=None)
    assert info.value.status_code == 403
    assert credential.scopes == [(f"{logs.endpoint}/.default",)]


@pytest.mark.parametrize(("authorization", "status", "code"), [
    (None, 401, "AuthenticationFailed"),
    ("Basic dXNlcjpwYXNz", 401, "AuthenticationFailed"),
    ("Bearer not-a-jwt", 403, "InvalidAuthenticationToken"),
    ("Bearer " + mint_token(b"another issuer's key", LOGS_AUDIENCE, DEFAULT_TENANT), 403,
     "InvalidAuthenticationToken"),
    ("expired", 403, "InvalidAuthenticationToken"),
    ("for ARM", 403, "InvalidTokenError"),
])
def test_the_fake_refuses_requests_without_a_token_it_issued_for_the_logs_api(
    logs: MonitorLogsFake, tls_files: TlsFiles, authorization: str | None, status: int,
    code: str,
) -> None:
    own = {"expired": f"Bearer {logs.token(lifetime=-60)}",
           "for ARM": f"Bearer {logs.token('https://management.azure.com')}"}
    authorization = own.get(authorization or "", authorization)
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.post(f"{logs.endpoint}/v1/workspaces/{WORKSPACE}/query",
                             json={"query": "print 1"}, headers=headers,
                             verify=str(tls_files.ca), timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert logs.queries() == []


def test_missing_read_access_is_denied_with_a_hint(
    logs: MonitorLogsFake, query: AppInsightsQuery
) -> None:
    logs.reject(403, inner=[("UnauthorizedClient", "The client does not have access.")])

    error = failure_of(query)

    assert error.failure is Failure.DENIED
    assert "HTTP 403 InsufficientAccessError: The client does not have access." in error.reason
    assert error.reason.endswith("needs read access (e.g. Monitoring Reader) on it")


def test_a_credential_that_cannot_get_a_token_is_denied(query: AppInsightsQuery) -> None:
    class NoIdentity:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise ClientAuthenticationError("ManagedIdentityCredential: no identity endpoint")

    error = failure_of(replace(query, credential=NoIdentity()))

    assert error.failure is Failure.DENIED
    assert error.reason == (f"could not get a token for {LOGS_AUDIENCE}: "
                            "ClientAuthenticationError: ManagedIdentityCredential: no "
                            "identity endpoint")


def test_by_default_the_apps_managed_identity_gets_the_token(
    logs: MonitorLogsFake, query: AppInsightsQuery, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs.answer(RATE_TABLE)
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                 "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)
    default_credential.cache_clear()
    try:
        with logs.managed_identity() as identity:
            for name, value in identity.environment().items():
                monkeypatch.setenv(name, value)
            as_the_app = replace(query, credential=None)

            assert [as_the_app.run().value for _ in range(2)] == [0.025, 0.025]
            assert identity.resources == [LOGS_AUDIENCE]  # one token, cached between queries
    finally:
        default_credential.cache_clear()


def test_no_token_reaches_logs_or_errors(
    logs: MonitorLogsFake, query: AppInsightsQuery, credential: EntraTokenFake,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    logs.answer(RATE_TABLE)
    assert query.run().value == 0.025
    error = failure_of(replace(query, audience="https://example.org"))

    assert len(credential.issued) == 2 and error.failure is Failure.DENIED
    shown = caplog.text + str(error) + "".join(traceback.format_exception(error))
    assert caplog.records and not [t for t in credential.issued if t in shown]


def test_an_unreachable_service_says_so(query: AppInsightsQuery) -> None:
    nobody = f"https://127.0.0.1:{free_port()}"

    error = failure_of(replace(query, endpoint=nobody))

    assert error.failure is Failure.UNREACHABLE
    assert error.reason.startswith(f"{nobody} could not be reached: ServiceRequestError: ")


def test_a_transient_error_is_retried_by_the_client_then_reported(
    logs: MonitorLogsFake, query: AppInsightsQuery
) -> None:
    logs.answer(RATE_TABLE)
    logs.reject(503, times=1)
    retrying = replace(query, connection=replace(query.connection, retries=1))

    assert retrying.run().value == 0.025
    assert len(logs.queries()) == 2

    logs.reject(503, times=2)
    error = failure_of(retrying)
    assert error.failure is Failure.UNREACHABLE
    assert error.reason.startswith("the service is unavailable (HTTP 503 ServiceUnavailable")


def test_a_partial_result_is_not_a_number(logs: MonitorLogsFake, query: AppInsightsQuery) -> None:
    logs.answer(RATE_TABLE, partial_error="Query result set has exceeded the internal limit")

    error = failure_of(query)

    assert error.failure is Failure.PARTIAL
    assert error.reason == ("the service answered only part of the query: Query result set "
                            "has exceeded the internal limit")


@pytest.mark.parametrize(("table", "reason"), [
    (Table((("rate", "real"),), ((0.1,),)),
     "column 'failure_rate' is not in the result (columns: rate)"),
    (Table((("failure_rate", "string"),), (("high",),)),
     "column 'failure_rate' holds 'high', not a number"),
    (Table((("failure_rate", "bool"),), ((True,),)),
     "column 'failure_rate' holds True, not a number"),
])
def test_a_missing_or_non_numeric_column_is_a_bad_result(
    logs: MonitorLogsFake, query: AppInsightsQuery, table: Table, reason: str
) -> None:
    logs.answer(table)

    error = failure_of(query)

    assert (error.failure, error.reason) == (Failure.BAD_RESULT, reason)


def test_numbers_sent_as_strings_are_read(logs: MonitorLogsFake, query: AppInsightsQuery) -> None:
    logs.answer_value("failure_rate", "0.125", "decimal")
    assert query.run().value == 0.125


NAIVE = datetime(2026, 12, 6, 16, 0)


@pytest.mark.parametrize(("changes", "message"), [
    ({"workspace_id": WORKSPACE}, "give either a resource id or a workspace id"),
    ({"resource_id": None}, "give either a resource id or a workspace id"),
    ({"resource_id": RESOURCE + "/../../other/query?x=1"}, "is not of the form"),
    ({"resource_id": "/subscriptions/not-a-guid/resourceGroups/rg/providers/p/t/n"},
     "is not of the form"),
    ({"resource_id": None, "workspace_id": "my-workspace/../x"}, "is not a GUID"),
    ({"kql": "  "}, "the KQL query is empty"),
    ({"kql": "x" * 20_001}, "longer than 20000 characters"),
    ({"column": ""}, "is not a column name"),
    ({"column": "rate\n"}, "is not a column name"),
    ({"timespan": timedelta(0)}, "longer than zero"),
    ({"timespan": (NAIVE, FIVE_MINUTES)}, "must carry a time zone"),
    ({"timespan": (NAIVE.replace(tzinfo=UTC), NAIVE.replace(tzinfo=UTC))}, "end after"),
    ({"timespan": 300}, "must be a duration"),
    ({"endpoint": "http://127.0.0.1:1"}, "is not an https URL of a host"),
    ({"endpoint": "https://api.loganalytics.io/v1/workspaces"}, "is not an https URL"),
    ({"audience": "api.loganalytics.io"}, "is not an https URL of a host"),
])
def test_bad_input_is_one_clear_line_and_sends_nothing(
    logs: MonitorLogsFake, query: AppInsightsQuery, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidAppInsightsQuery, match=message) as info:
        replace(query, **changes)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300
    assert logs.counts() == (0, 0)


def test_the_fake_accepts_the_audiences_it_is_told(
    logs: MonitorLogsFake, query: AppInsightsQuery
) -> None:
    logs.answer(RATE_TABLE)
    logs.accept_audiences("https://api.applicationinsights.io")

    assert replace(query, audience="https://api.applicationinsights.io").run().value == 0.025
    assert failure_of(query).failure is Failure.DENIED


def test_the_fake_serves_the_get_form_and_forgets_on_reset(
    logs: MonitorLogsFake, tls_files: TlsFiles
) -> None:
    logs.answer(RATE_TABLE)
    response = requests.get(f"{logs.endpoint}/v1/workspaces/{WORKSPACE}/query",
                            params={"query": "requests | count", "timespan": "PT1H"},
                            headers={"Authorization": f"Bearer {logs.token()}"},
                            verify=str(tls_files.ca), timeout=10)

    assert response.json()["tables"][0]["rows"][0] == [3, 120, 0.025]
    assert logs.queries() == [LogsQuery("workspace", WORKSPACE, "requests | count", "PT1H")]
    logs.reset()
    assert (logs.queries(), logs.counts()) == ([], (0, 0))


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    (f"/v1/workspaces/{WORKSPACE}/query", {"query": " "}, 400, "BadArgumentError"),
    (f"/v1/workspaces/{WORKSPACE}/query", ["not", "an", "object"], 400, "BadArgumentError"),
    (f"/v2/workspaces/{WORKSPACE}/query", {"query": "print 1"}, 404, "PathNotFoundError"),
    ("/v1/elsewhere/query", {"query": "print 1"}, 404, "PathNotFoundError"),
])
def test_the_fake_refuses_what_the_service_would_refuse(
    logs: MonitorLogsFake, tls_files: TlsFiles, path: str, body: Any, status: int, code: str
) -> None:
    response = requests.post(f"{logs.endpoint}{path}", json=body, verify=str(tls_files.ca),
                             headers={"Authorization": f"Bearer {logs.token()}"}, timeout=10)

    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert logs.queries() == []
