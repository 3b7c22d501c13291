"""The dashboard served by the app in devhost, on Azurite, the registry and the simulator.

A release pushed to the registry passes QA and waits at production's gate; the ledger
also holds v1.0.0 (in production) and v1.0.1 (rolled back). The page and its JSON show
all three, a release's page shows its timeline, and a broken policy or an empty ledger
is a message on the page, not an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.azurite import Azurite
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from tests.dashboard.dashboard_stack import (
    SERVICE,
    SIGNING_KEY,
    TOKEN,
    V1,
    V2,
    DashboardStack,
    dashboard_stack,
)
from tests.dashboard.test_dashboard_view import Text


def test_dashboard_shows_what_runs_what_waits_and_recent_releases(
        dashboard_app: DashboardStack) -> None:
    dashboard_app.seed_history()
    waiting, digest = dashboard_app.waiting_release("v1.0.2")

    page = dashboard_app.get("/api/dashboard")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src" not in page.headers["Content-Security-Policy"]
    html = Text(page.text)
    assert html.refresh == "30" and html.scripts == 0

    data = dashboard_app.get("/api/dashboard", headers={"Accept": "application/json"}).json()
    (service,) = data["services"]
    assert service["service"] == SERVICE and data["environments"] == ["qa", "prod"]
    cells = {cell["environment"]: cell for cell in service["cells"]}
    assert cells["qa"]["current"]["releaseId"] == waiting  # the push deployed QA
    assert cells["qa"]["current"]["digest"] == digest[:19]
    assert cells["qa"]["lastGood"]["releaseId"] == waiting  # and verified it
    assert (cells["prod"]["current"]["version"], cells["prod"]["lastGood"]["version"]) == (
        "v1.0.0", "v1.0.0")

    (gate,) = data["waiting"]
    assert (gate["releaseId"], gate["environment"], gate["version"]) == (
        waiting, "prod", "v1.0.2")
    assert gate["live"] is True and gate["deadline"] and gate["deadlineText"].startswith("in ")
    assert [row["releaseId"] for row in data["recent"]] == [waiting, V2, V1]
    assert [row["state"] for row in data["recent"]] == [
        "WaitingForApproval", "RolledBack", "Completed"]
    assert data["recent"][2]["durationText"] == "20 min"

    text = html.text
    assert "delivery v1.0.2" in text and "WaitingForApproval" in text
    assert "RolledBack" in text and "CrashLoopBackOff" in text
    assert f"/api/dashboard/releases/{waiting}" in html.links
    for shown in (page.text, str(data)):
        assert TOKEN not in shown and SIGNING_KEY not in shown
        assert "kubeconfig" not in shown.lower() and "sandbox-admin-token" not in shown

    same = dashboard_app.get("/api/dashboard?format=json&refresh=0&limit=1").json()
    assert same["refresh"] == 0 and [r["releaseId"] for r in same["recent"]] == [waiting]


def test_release_page_shows_its_timeline_and_gate(dashboard_app: DashboardStack) -> None:
    waiting, _ = dashboard_app.waiting_release("v1.0.2")
    page = dashboard_app.get(f"/api/dashboard/releases/{waiting}")
    assert page.status_code == 200
    html = Text(page.text)
    assert "delivery v1.0.2 WaitingForApproval" in html.text
    assert "Waiting for a decision" in html.text and "prod" in html.text
    assert "registry" in html.text and "stage Healthy" in html.text  # QA passed
    assert html.refresh == "30"

    data = dashboard_app.get(f"/api/dashboard/releases/{waiting}?format=json").json()
    assert data["waiting"]["environment"] == "prod" and data["runtimeStatus"] == "Running"
    sources = [entry["source"] for entry in data["timeline"]]
    assert sources[0] == "registry" and "orchestration" in sources and "ledger" in sources
    assert [(s["environment"], s["state"]) for s in data["stages"]][0] == ("qa", "Healthy")

    missing = dashboard_app.get(f"/api/dashboard/releases/{SERVICE}-0000000000000000")
    assert missing.status_code == 404
    assert f"no release or operation '{SERVICE}-0000000000000000'" in Text(missing.text).text
    as_json = dashboard_app.get(f"/api/dashboard/releases/{SERVICE}-0000000000000000?format=json")
    assert as_json.status_code == 404 and set(as_json.json()) == {"error"}


def test_bad_queries_are_400_with_one_line(dashboard_app: DashboardStack) -> None:
    for query, words in [("refresh=2", "refresh must be 0 (never)"),
                         ("refresh=abc", "refresh must be"), ("limit=0", "limit must be"),
                         ("format=xml", "format must be one of html, json"),
                         ("colour=red", "unknown query parameter 'colour'")]:
        answer = dashboard_app.get(f"/api/dashboard?{query}")
        assert answer.status_code == 400, query
        assert words in Text(answer.text).text, (query, answer.text)
        answer = dashboard_app.get(f"/api/dashboard?{query}",
                                   headers={"Accept": "application/json"})
        if "format" not in query:
            assert answer.status_code == 400 and words in answer.json()["error"]


@pytest.fixture
def broken_stack(tmp_path: Path, registry: LocalRegistry, tls_files: TlsFiles,
                 azurite: Azurite, kube: KubeSimulator) -> Iterator[DashboardStack]:
    with dashboard_stack(tmp_path, registry, tls_files, azurite, kube,
                         policy_text="version: 1\nservices:\n  delivery: [not, a, mapping]\n"
                         ) as running:
        yield running


def test_empty_ledger_and_broken_policy_are_messages_not_errors(
        broken_stack: DashboardStack) -> None:
    page = broken_stack.get("/api/dashboard")
    assert page.status_code == 200
    text = Text(page.text).text
    assert "The release policy cannot be used" in text
    assert "policy.yaml:1: registries: required field is missing (and 1 more problem)" in text
    assert "No services yet" in text and "No releases yet." in text

    broken_stack.seed_history()  # services still come from the ledger
    data = broken_stack.get("/api/dashboard?format=json").json()
    assert [(s["service"], s["inPolicy"]) for s in data["services"]] == [(SERVICE, False)]
    assert "cannot be used" in data["messages"][0]
    assert str(broken_stack.tmp_path) not in str(data)  # the file's name, not its path


def test_a_service_pipeline_as_json_and_an_unknown_service(
        dashboard_app: DashboardStack) -> None:
    dashboard_app.seed_history()
    data = dashboard_app.get(f"/api/dashboard/services/{SERVICE}?format=json").json()
    assert data["service"] == SERVICE
    assert [stage["environment"] for stage in data["stages"]] == ["qa", "prod"]
    prod = data["stages"][1]
    assert prod["current"]["releaseId"] == V1 and prod["good"] is True
    assert prod["lastFailure"]["releaseId"] == V2
    missing = dashboard_app.get("/api/dashboard/services/nosuch?format=json")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no service nosuch in the policy or the ledger"}
    bad = dashboard_app.get(f"/api/dashboard/services/{SERVICE}?limit=3")
    assert bad.status_code == 400
