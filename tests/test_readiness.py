"""The settings binding expressions need: reported at start-up and by `/api/health`.

devhost refuses to start without them, as the Functions host marks the function in error;
the app itself says which setting is missing, so these run the app's own code directly.
"""

from __future__ import annotations

import json
import logging

import azure.functions as func
import pytest

from shared.readiness import app_problems, binding_problems, log_app_problems
from triggers.health import health

MISSING = ("RECONCILE_SCHEDULE is not set: the function reconcile_registries cannot run (the"
           " host cannot resolve its schedule); set it, e.g. 0 */5 * * * * for every 5 minutes")


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_schedule_is_a_problem(value: str | None) -> None:
    environ = {} if value is None else {"RECONCILE_SCHEDULE": value}
    assert [(p.setting, p.message) for p in binding_problems(environ)] == [
        ("RECONCILE_SCHEDULE", MISSING)]
    assert binding_problems({"RECONCILE_SCHEDULE": "0 */5 * * * *"}) == []


def test_health_and_the_start_up_log_name_the_missing_schedule(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("RECONCILE_SCHEDULE", raising=False)
    monkeypatch.setenv("APPROVAL_SIGNING_KEY", "k" * 40)
    monkeypatch.setenv("APPROVAL_BASE_URL", "https://release.example.com")
    monkeypatch.setenv("APPROVAL_IDENTITY", "token")
    request = func.HttpRequest("GET", "http://localhost/api/health", body=b"")
    answer = health(request)
    body = json.loads(answer.get_body())
    assert (answer.status_code, body["status"]) == (200, "misconfigured")
    assert body["problems"] == [{"setting": "RECONCILE_SCHEDULE", "problem": MISSING}]

    with caplog.at_level(logging.ERROR):
        assert [p.setting for p in log_app_problems()] == ["RECONCILE_SCHEDULE"]
    assert [r.getMessage() for r in caplog.records] == [f"configuration error: {MISSING}"]

    monkeypatch.setenv("RECONCILE_SCHEDULE", "00:05:00")
    assert app_problems() == []
