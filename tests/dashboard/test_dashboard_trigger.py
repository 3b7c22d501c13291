"""The dashboard's HTTP functions called directly: an unusable ledger is a 503 page, a
task hub that does not answer a message.

The ledger tests pass no Durable client (the ledger is read first); the live-status test
uses stand-in clients at the network boundary. The rest is the real trigger and renderer.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
import pytest

from triggers.dashboard import dashboard, live_statuses


def get(url: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest("GET", url, body=b"", headers=headers or {},
                               params=dict(parse_qsl(urlsplit(url).query)))
    handler = dashboard.build().get_user_function().client_function
    return asyncio.run(handler(request, None))


@pytest.fixture
def no_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.delenv("AzureWebJobsStorage__accountName", raising=False)
    monkeypatch.delenv("AzureWebJobsStorage__tableServiceUri", raising=False)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", "dashboardnoledger")


def test_no_ledger_setting_is_a_503_page_naming_the_setting(no_ledger: None) -> None:
    response = get("http://localhost/api/dashboard")
    assert response.status_code == 503
    page = response.get_body().decode()
    assert "Ledger unavailable" in page
    assert "app setting AzureWebJobsStorage is not set" in page
    assert response.headers["Cache-Control"] == "no-store"

    response = get("http://localhost/api/dashboard", {"Accept": "application/json"})
    assert response.status_code == 503
    error = json.loads(response.get_body())["error"]
    assert error.startswith("ledger unavailable: app setting AzureWebJobsStorage is not set")


def test_a_bad_query_is_refused_before_anything_is_read(no_ledger: None) -> None:
    response = get("http://localhost/api/dashboard?refresh=1&format=json")
    assert response.status_code == 400
    assert json.loads(response.get_body()) == {
        "error": "refresh must be 0 (never) or whole seconds from 5 to 3600, not '1'"}


class TaskHubDown:
    """A Durable client whose task hub does not answer (the network boundary)."""

    async def get_status(self, instance_id: str) -> None:
        raise ConnectionError("task hub unreachable")


class TaskHubUp:
    async def get_status(self, instance_id: str) -> object:
        class Status:
            custom_status = json.dumps({"waitingFor": {"environment": "prod"}})

        return Status() if instance_id == "known" else None


def test_live_status_of_waiting_releases_or_a_message_when_durable_is_down() -> None:
    messages: list[str] = []
    assert asyncio.run(live_statuses(TaskHubDown(), ["a", "b"], messages)) == {}
    (message,) = messages
    assert "live status of waiting releases is unavailable" in message

    messages = []
    statuses = asyncio.run(live_statuses(TaskHubUp(), ["known", "gone"], messages))
    assert statuses == {"known": {"waitingFor": {"environment": "prod"}}, "gone": None}
    assert messages == []
