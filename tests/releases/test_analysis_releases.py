"""Releases whose production is verified by an analysis over time, end to end through
devhost on a virtual clock: measurements one interval apart (durable timers), a passing
bake time, and a rising error rate that rolls production back at its first measurement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from release_rig import Released, ReleaseStack, outcome

from sandbox.monitor_logs import ManagedIdentityFake, MonitorLogsFake
from sandbox.policy_text import SERVICE
from sandbox.tls import TlsFiles
from shared.analysis.appinsights import LOGS_AUDIENCE, default_credential
from shared.ledger.evidence import EvidenceBook


def analysis(url: str, measurements: int = 3, failure_limit: int = 0,
             initial_delay: str | None = None) -> str:
    """Production's `analysis` (8-space indent): an http metric over `url`, every 30 s."""
    return (
        "        analysis:\n"
        "          interval: 30s\n"
        + (f"          initialDelay: {initial_delay}\n" if initial_delay else "") +
        f"          measurements: {measurements}\n"
        f"          failureLimit: {failure_limit}\n"
        "          metrics:\n"
        "            - name: health\n"
        f"              http: {{url: \"{url}\", requests: 4}}\n"
        "              threshold: {min: 0.75}\n")


def history_of(status: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(h["step"], h.get("detail")) for h in status["customStatus"]["history"]]


def test_an_analysis_that_passes_its_bake_time_completes_the_release(
        stack: ReleaseStack) -> None:
    server = stack.check_server(lambda headers: (200, {"status": "ok"}))
    stack.policy(checks=[], prod_extra=analysis(server.url, initial_delay="20s"))
    good = stack.push("v1.0.0")

    async def scenario(released: Released) -> None:
        release, done = await released.through_gate("v1.0.0", good, seconds=60)
        assert outcome(done) == "Completed", done
        assert server.calls == 3 * 4  # three measurements of four requests
        assert done["customStatus"]["evidence"]["prod"] == (
            "analysis passed (3 measurements): health: 1 (within 0.75 ≤ x): 4 of 4 requests"
            " passed (status 200 as expected)")
        timers = [e for e in released.history(f"{release}:prod")
                  if e["EventType"] == "TimerCreated"]
        assert len(timers) >= 3  # one interval before each measurement, durable
        waits = [datetime.fromisoformat(t["FireAt"].replace("Z", "+00:00"))
                 - datetime.fromisoformat(t["Timestamp"].replace("Z", "+00:00"))
                 for t in timers[-3:]]
        assert waits == [timedelta(seconds=50), timedelta(seconds=30), timedelta(seconds=30)]
        # Every measurement is evidence: the ledger keeps each round, the API shows them.
        rounds = EvidenceBook.beside(stack.ledger).rounds(release)
        assert [(r.environment, r.round, r.evidence.verdict.value) for r in rounds] == [
            ("prod", 1, "passed"), ("prod", 2, "passed"), ("prod", 3, "passed")]
        assert [r.at for r in rounds] == sorted(r.at for r in rounds)
        async with aiohttp.ClientSession() as http, http.get(
                f"{released.host.base_url}/api/releases/{release}") as answer:
            shown = await answer.json()
        assert [(a["environment"], a["round"], a["measurements"][0]["value"])
                for a in shown["analysis"]] == [("prod", 1, 1.0), ("prod", 2, 1.0),
                                                ("prod", 3, 1.0)]

    stack.serve(scenario)


def test_a_rising_error_rate_rolls_production_back_at_its_first_measurement(
        stack: ReleaseStack) -> None:
    answers = iter([(200, {"status": "ok"})] * 2 + [(500, {"status": "down"})] * 100)
    server = stack.check_server(lambda headers: next(answers))
    stack.policy(checks=[], prod_extra=analysis(server.url))
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        server.answer = lambda headers: (200, {"status": "ok"})
        await released.completed("v1.0.0", good)
        server.answer = lambda headers: next(answers)
        release, done = await released.through_gate("v2.0.0", bad, seconds=60)
        assert outcome(done) == "RolledBack", done
        assert done["output"]["reason"] == (
            "analysis failed: analysis 1/3: health: 0.5 (outside 0.75 ≤ x): 2 of 4 requests"
            " passed (status 500, expected 200)")
        assert stack.image("prod") == stack.image_in("prod", good)
        assert stack.ledger.environment_state(SERVICE, "prod").current.digest == good

    stack.serve(scenario)


RESOURCE = ("/subscriptions/5d2c4b8e-9f3a-4e1b-8c7d-2a6f0e9b3c41/resourceGroups/rg-prod"
            "/providers/microsoft.insights/components/delivery-prod")


class LogsApi(NamedTuple):
    """The Logs query API fake and the managed identity endpoint that gets its tokens."""

    fake: MonitorLogsFake
    identity: ManagedIdentityFake


@pytest.fixture
def logs_api(tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[LogsApi]:
    """The Logs query API (the fake), reached with the app's own identity: the
    DefaultAzureCredential of App Service's managed identity endpoint (served by the fake)."""
    with MonitorLogsFake(tls_files) as fake, fake.managed_identity() as identity:
        for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                     "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        for name, value in identity.environment().items():
            monkeypatch.setenv(name, value)
        default_credential.cache_clear()
        try:
            yield LogsApi(fake, identity)
        finally:
            default_credential.cache_clear()


def insights_analysis(logs: MonitorLogsFake, ca: Path, query: str, extra: str = "") -> str:
    """Production's `analysis` (8-space indent): one App Insights metric `failed-requests`
    (at most 10) over the fake, 2 measurements a minute apart; `extra` lines after."""
    return ("        analysis:\n"
            "          interval: 1m\n"
            "          measurements: 2\n"
            f"{extra}"
            "          metrics:\n"
            "            - name: failed-requests\n"
            "              appInsights:\n"
            f"                resourceId: {RESOURCE}\n"
            f"                query: {query}\n"
            "                column: failed\n"
            "                timespan: 10m\n"
            f"                endpoint: {logs.endpoint}\n"
            f"                caBundle: {ca}\n"
            "              threshold: {max: 10}\n")


def test_an_application_insights_query_decides_a_rollback(
        stack: ReleaseStack, tls_files: TlsFiles, logs_api: LogsApi) -> None:
    """The app's own identity (DefaultAzureCredential, App Service's managed identity
    endpoint) queries the Logs API (the fake): failures of the new version roll it back."""
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")
    logs, identity = logs_api
    stack.policy(checks=[], prod_extra=insights_analysis(
        logs, tls_files.ca, "requests | where cloud_RoleName == '${service}' and timestamp >"
        " datetime(${windowStart}) | summarize failed = countif(success == false)"))

    async def scenario(released: Released) -> None:
        logs.answer_value("failed", 2, "long")
        await released.completed("v1.0.0", good)
        assert len(logs.queries()) == 2
        logs.answer_value("failed", 42, "long")
        release, done = await released.through_gate("v2.0.0", bad, seconds=60)
        assert outcome(done) == "RolledBack", done
        assert done["output"]["reason"].startswith(
            "analysis failed: analysis 1/2: failed-requests: 42 (outside x ≤ 10)")
        sent = logs.queries()[-1]
        assert sent.target.lower() == RESOURCE.lower()
        assert f"cloud_RoleName == '{SERVICE}'" in sent.query
        assert "${" not in sent.query and "datetime(20" in sent.query
        assert stack.image("prod") == stack.image_in("prod", good)
        assert identity.resources and set(identity.resources) == {LOGS_AUDIENCE}

    stack.serve(scenario)


def test_an_inconclusive_analysis_waits_for_a_person(
        stack: ReleaseStack, tls_files: TlsFiles, logs_api: LogsApi) -> None:
    """No rows from the query, `onNoData: inconclusive`: neither go on nor roll back alone;
    the release waits, as a paused failure does, and a person rolls it back."""
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")
    logs = logs_api.fake
    stack.policy(checks=[], prod_extra=insights_analysis(
        logs, tls_files.ca, "requests | summarize failed = countif(success == false)",
        "          onNoData: inconclusive\n"))

    async def scenario(released: Released) -> None:
        logs.answer_value("failed", 0, "long")
        await released.completed("v1.0.0", good)
        logs.answer()  # an empty answer: no table, no number
        release = released.start("v2.0.0", bad)
        await released.at_gate(release)
        released.approve(release)
        status = await released.until(release, lambda s: ((s.get("customStatus") or {})
                                      .get("waitingFor") or {}).get("kind") == "failure",
                                      seconds=60)
        waiting = status["customStatus"]["waitingFor"]
        assert waiting["failure"].startswith("analysis inconclusive: analysis 1/2:")
        assert stack.image("prod") == stack.image_in("prod", bad)  # nothing restored yet
        released.raise_event(release, waiting["event"], {
            "decision": "rollback", "by": "oncall@example.com", "reason": "no data"})
        done = await released.finished(release, seconds=60)
        assert outcome(done) == "RolledBack", done
        assert stack.image("prod") == stack.image_in("prod", good)

    stack.serve(scenario)
