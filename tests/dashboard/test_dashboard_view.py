"""The dashboard's view models and HTML, without I/O: empty, waiting, failed, rolled back."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from shared.dashboard import (
    build_overview,
    build_release_detail,
    render_message,
    render_overview,
    render_release,
)
from shared.dashboard.render import style_source
from shared.dashboard.view import relative, safe_link, short_digest, span
from shared.ledger import Deployment, EnvironmentState, ReleaseRecord, StageState

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")
SECRET = "kubeconfig-token-s3cr3t"


def release(rid: str, version: str, digest: str, state: str, minutes_ago: int,
            took: int | None = None, **fields: object) -> ReleaseRecord:
    created = NOW - timedelta(minutes=minutes_ago)
    updated = created + timedelta(minutes=took) if took is not None else NOW
    return ReleaseRecord(release_id=rid, service="delivery", version=version, digest=digest,
                         state=state, created_at=created, updated_at=updated, **fields)


V1 = release("delivery-aaaaaaaaaaaaaaaa", "v1.0.0", D1, "Completed", 120, 7,
             stages={"qa": StageState("Healthy"), "prod": StageState("Healthy")})
V2 = release("delivery-bbbbbbbbbbbbbbbb", "v1.0.1", D2, "RolledBack", 60, 3,
             environment="prod", reason="prod: rollout failed: CrashLoopBackOff")
V3 = release("delivery-cccccccccccccccc", "v1.0.2", D3, "WaitingForApproval", 10,
             environment="prod", step="approval")
ROLLBACK = release("rollback:delivery:prod:1", "v1.0.0", D1, "Completed", 30, 1,
                   environment="prod", reason="by ann@example.com: checkout errors")
PROD = EnvironmentState("delivery", "prod",
                        current=Deployment(V1.release_id, D1, "r/prod/delivery@" + D1,
                                           NOW - timedelta(minutes=55)),
                        last_good=Deployment(V1.release_id, D1, "r/prod/delivery@" + D1,
                                             NOW - timedelta(minutes=113)))
QA = EnvironmentState("delivery", "qa",
                      current=Deployment(V3.release_id, D3, "r/delivery@" + D3,
                                         NOW - timedelta(minutes=9)),
                      last_good=Deployment(V2.release_id, D2, "r/delivery@" + D2,
                                           NOW - timedelta(minutes=58)))
WAITING_STATUS = {
    "step": "approval", "environment": "prod", "kubeconfig": SECRET,
    "history": [{"at": (NOW - timedelta(minutes=8)).isoformat(), "environment": "prod",
                 "step": "approval"},
                {"at": (NOW - timedelta(minutes=2)).isoformat(), "environment": "prod",
                 "step": "approval"}],
    "waitingFor": {
        "kind": "approval", "environment": "prod", "event": "approval:prod:1",
        "deadline": (NOW + timedelta(hours=2, minutes=5)).isoformat(),
        "requiredApprovals": 2, "approvals": [{"by": "bob@example.com", "at": "2026-…"}],
        "reminders": 1, "approvalPage": None, "webhook": "https://hooks.example/" + SECRET,
        "approvalLinks": [
            {"approver": "alice@example.com",
             "url": "http://127.0.0.1:7071/api/releases/x/approvals/prod?token=t.a"},
            {"approver": "mallory", "url": "javascript:alert(1)"}]}}


def overview(**overrides: object):
    arguments = dict(now=NOW, policy_services={"delivery": ["qa", "prod"]},
                     environment_states={"delivery": [PROD, QA]},
                     recent=[V3, ROLLBACK, V2, V1], waiting=[V3],
                     statuses={V3.release_id: WAITING_STATUS},
                     known={r.release_id: r for r in (V1, V2, V3)})
    arguments.update(overrides)
    return build_overview(**arguments)


class Text(HTMLParser):
    """The page's visible text, its links and its meta refresh."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.links: list[str] = []
        self.refresh: str | None = None
        self.scripts = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "a":
            self.links.append(attributes["href"])
        if tag == "script":
            self.scripts += 1
        if tag == "meta" and attributes.get("http-equiv") == "refresh":
            self.refresh = attributes["content"]

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def test_formatting_helpers() -> None:
    assert short_digest(D1) == "sha256:aaaaaaaaaaaa"
    assert short_digest("") == ""
    assert [span(s) for s in (0, 45, 125, 720, 3599, 11_100, 190_000, 72 * 3600 - 2)] == [
        "0 s", "45 s", "2 min 5 s", "12 min", "1 h", "3 h 5 min", "2 d 5 h", "3 d"]
    assert relative(NOW + timedelta(hours=2, minutes=5), NOW) == "in 2 h 5 min"
    assert relative(NOW - timedelta(minutes=3), NOW) == "3 min ago"
    assert relative(NOW, NOW) == "now" and relative(None, NOW) == ""
    assert safe_link("https://a.example/p?token=x") == "https://a.example/p?token=x"
    for bad in ("javascript:alert(1)", "/relative", "http://a b", "ftp://x", None, 3):
        assert safe_link(bad) is None


def test_services_by_environment_with_running_and_last_good() -> None:
    view = overview()
    assert view.environments == ("qa", "prod")
    (row,) = view.services
    assert row.in_policy and [c.environment for c in row.cells] == ["qa", "prod"]
    prod, qa = row.cell("prod"), row.cell("qa")
    assert (prod.current.version, prod.current.digest, prod.good) == (
        "v1.0.0", "sha256:aaaaaaaaaaaa", True)
    assert prod.current.since_text == "55 min ago"
    assert (qa.current.version, qa.last_good.version, qa.good) == ("v1.0.2", "v1.0.1", False)
    page = Text(render_overview(view))
    assert "v1.0.0 sha256:aaaaaaaaaaaa since 55 min ago last good release" in page.text
    assert "last good: v1.0.1 sha256:bbbbbbbbbbbb" in page.text
    assert "/api/dashboard/releases/delivery-aaaaaaaaaaaaaaaa" in page.links


def test_waiting_release_shows_gate_deadline_reminders_and_only_http_links() -> None:
    view = overview()
    (waiting,) = view.waiting
    assert (waiting.environment, waiting.reminders, waiting.required_approvals) == (
        "prod", 1, 2)
    assert waiting.deadline == NOW + timedelta(hours=2, minutes=5)
    assert waiting.deadline_text == "in 2 h 5 min" and not waiting.overdue
    assert waiting.waiting_since == NOW - timedelta(minutes=8)  # the first approval step
    assert [(a.approver, a.url) for a in waiting.links] == [
        ("alice@example.com", "http://127.0.0.1:7071/api/releases/x/approvals/prod?token=t.a")]
    page = Text(render_overview(view))
    assert "2026-11-22 08:05:00 UTC in 2 h 5 min" in page.text
    assert "1 of 2 bob@example.com" in page.text
    assert "Approval page for alice@example.com" in page.text
    assert "http://127.0.0.1:7071/api/releases/x/approvals/prod?token=t.a" in page.links
    assert not any(link.startswith("javascript") for link in page.links)


def test_appservice_mode_shows_the_one_page_link_for_every_approver() -> None:
    status = dict(WAITING_STATUS, waitingFor={
        "kind": "approval", "environment": "prod", "approvalLinks": [],
        "approvalPage": "https://release.example.com/api/releases/x/approvals/prod?token=t"})
    (waiting,) = overview(statuses={V3.release_id: status}).waiting
    assert [(a.approver, a.url) for a in waiting.links] == [
        (None, "https://release.example.com/api/releases/x/approvals/prod?token=t")]
    page = Text(render_overview(overview(statuses={V3.release_id: status})))
    assert "Approval page" in page.text
    assert "Approval page for" not in page.text


def test_overdue_gate_and_release_without_live_status() -> None:
    late = dict(WAITING_STATUS, waitingFor={"kind": "approval", "environment": "prod",
                                            "deadline": (NOW - timedelta(minutes=1))
                                            .isoformat()})
    (waiting,) = overview(statuses={V3.release_id: late}).waiting
    assert waiting.overdue and waiting.deadline_text == "1 min ago"
    (unknown,) = overview(statuses={}).waiting
    assert (unknown.live, unknown.deadline, unknown.environment) == (False, None, "prod")
    assert "live status unavailable" in Text(render_overview(overview(statuses={}))).text


def test_recent_releases_failed_and_rolled_back_with_durations() -> None:
    rows = {r.release_id: r for r in overview().recent}
    assert rows[V1.release_id].duration_text == "7 min"
    assert rows[V3.release_id].duration_text == "10 min so far" and rows[V3.release_id].active
    rolled_back = rows[V2.release_id]
    assert (rolled_back.state, rolled_back.environment) == ("RolledBack", "prod")
    assert rows[ROLLBACK.release_id].kind == "rollback"
    page = Text(render_overview(overview()))
    assert "delivery v1.0.1 sha256:bbbbbbbbbbbb RolledBack prod" in page.text
    assert "prod: rollout failed: CrashLoopBackOff" in page.text
    assert "delivery v1.0.0 (rollback)" in page.text
    assert "/api/dashboard/releases/rollback:delivery:prod:1" in page.links


def test_empty_ledger_and_no_policy_say_so() -> None:
    view = overview(policy_services={}, environment_states={}, recent=[], waiting=[],
                    statuses={}, known={})
    page = Text(render_overview(view))
    assert "No services yet" in page.text and "Nothing waits at a gate." in page.text
    assert "No releases yet." in page.text
    assert view.to_dict()["services"] == [] and view.to_dict()["recent"] == []

    message = "The release policy cannot be used: policy.yaml:3: services: bad"
    broken = overview(policy_services=None, messages=[message])
    assert [r.service for r in broken.services] == ["delivery"]
    assert not broken.services[0].in_policy
    assert not any(c.in_policy for c in broken.services[0].cells)
    page = Text(render_overview(broken))
    assert message in page.text and "not in the policy" in page.text


def test_service_known_to_the_ledger_only_is_marked() -> None:
    view = overview(policy_services={"billing": ["prod"]})
    assert [(r.service, r.in_policy) for r in view.services] == [
        ("billing", True), ("delivery", False)]
    assert view.environments == ("prod", "qa")
    assert view.services[0].cell("prod").current is None
    assert "nothing released yet" in Text(render_overview(view)).text


@pytest.mark.parametrize("refresh, content", [(30, "30"), (5, "5"), (0, None)])
def test_refresh(refresh: int, content: str | None) -> None:
    assert Text(render_overview(overview(refresh=refresh))).refresh == content


def test_no_secret_no_script_and_escaped_text() -> None:
    hostile = release("delivery-dddddddddddddddd", "<script>alert(1)</script>", D2, "Failed",
                      5, 1, reason='<img src=x onerror="alert(1)">')
    view = overview(recent=[hostile, V1])
    html = render_overview(view)
    data = json.dumps(view.to_dict())
    for shown in (html, data):
        assert SECRET not in shown and "hooks.example" not in shown
        assert "javascript:" not in shown
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<img" not in html
    assert Text(html).scripts == 0


def test_json_view_is_the_same_view() -> None:
    data = overview().to_dict()
    assert data["generatedAt"] == NOW.isoformat() and data["refresh"] == 30
    (waiting,) = data["waiting"]
    assert waiting["deadline"] == (NOW + timedelta(hours=2, minutes=5)).isoformat()
    assert waiting["links"] == [{"approver": "alice@example.com", "url": (
        "http://127.0.0.1:7071/api/releases/x/approvals/prod?token=t.a")}]
    prod = data["services"][0]["cells"][1]
    assert prod["current"]["version"] == "v1.0.0" and prod["inPolicy"] is True
    assert [r["state"] for r in data["recent"]] == [
        "WaitingForApproval", "Completed", "RolledBack", "Completed"]


SHOWN = {  # GET /api/releases/{id} of a release waiting at prod's gate
    "releaseId": V3.release_id, "kind": "release", "service": "delivery", "version": "v1.0.2",
    "digest": D3, "state": "WaitingForApproval", "createdAt": V3.created_at.isoformat(),
    "updatedAt": V3.updated_at.isoformat(), "environment": "prod", "step": "approval",
    "reason": None,
    "stages": {"qa": {"state": "Healthy", "started": (NOW - timedelta(minutes=10)).isoformat(),
                      "finished": (NOW - timedelta(minutes=8, seconds=30)).isoformat(),
                      "detail": None}},
    "timeline": [
        {"at": (NOW - timedelta(minutes=10)).isoformat(), "source": "registry",
         "environment": None, "what": "push delivery:v1.0.2 via webhook: started"},
        {"at": (NOW - timedelta(minutes=8)).isoformat(), "source": "orchestration",
         "environment": "prod", "what": "approval"}],
    "durable": {"runtimeStatus": "Running", "customStatus": {
        **WAITING_STATUS, "evidence": {"qa": "GET /healthz 200 in 12 ms"},
        "pushedBy": "ci@example.com"}},
}


def test_release_page_with_gate_stages_and_timeline() -> None:
    view = build_release_detail(SHOWN, now=NOW)
    assert view.active and view.waiting is not None and view.waiting.reminders == 1
    assert [(s.environment, s.state, s.duration_text) for s in view.stages] == [
        ("qa", "Healthy", "1 min 30 s")]
    page = Text(render_release(view))
    assert page.refresh == "30"
    assert "delivery v1.0.2 WaitingForApproval" in page.text
    assert "Pushed by ci@example.com" in page.text
    assert "Verified in qa GET /healthz 200 in 12 ms" in page.text
    assert "push delivery:v1.0.2 via webhook: started" in page.text
    assert "Approval page for alice@example.com" in page.text
    assert "/api/dashboard" in page.links
    data = view.to_dict()
    assert data["evidence"] == {"qa": "GET /healthz 200 in 12 ms"}
    assert [e["source"] for e in data["timeline"]] == ["registry", "orchestration"]
    for shown in (render_release(view), json.dumps(data)):
        assert SECRET not in shown and "hooks.example" not in shown


def test_finished_release_page_does_not_refresh_or_show_a_gate() -> None:
    finished = {**SHOWN, "state": "RolledBack", "reason": "prod: rollout failed",
                "updatedAt": (NOW - timedelta(minutes=1)).isoformat(),
                "durable": {"runtimeStatus": "Completed", "customStatus": WAITING_STATUS}}
    view = build_release_detail(finished, now=NOW)
    assert view.waiting is None and not view.active and view.duration_text == "9 min"
    page = Text(render_release(view))
    assert page.refresh is None and "Waiting for a decision" not in page.text
    assert re.search(r"Reason prod: rollout failed", page.text)


def test_the_inline_stylesheet_is_the_one_the_csp_hash_allows() -> None:
    html = render_overview(overview())
    (css,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert style_source() == f"'sha256-{digest}'"
    assert '"Segoe UI"' in css  # not escaped


def test_message_page() -> None:
    page = Text(render_message("Not found", "no release 'x<b>'"))
    assert "no release 'x<b>'" in page.text and page.refresh is None


def test_a_failed_deployment_waiting_for_a_person_says_what_failed_and_how_to_decide() -> None:
    paused = release("delivery-dddddddddddddddd", "v1.0.3", D3, "Running", 5,
                     environment="prod", step="paused",
                     reason="rollout failed: <b>CrashLoopBackOff</b>")
    status = {"step": "paused", "environment": "prod", "waitingFor": {
        "kind": "failure", "environment": "prod", "event": "failure:prod:1",
        "deadline": (NOW + timedelta(minutes=90)).isoformat(), "onDeadline": "rollback",
        "failure": "rollout failed: <b>CrashLoopBackOff</b>", "kubeconfig": SECRET}}
    view = overview(recent=[paused, V1], paused=[paused],
                    statuses={V3.release_id: WAITING_STATUS, paused.release_id: status})
    (row,) = view.paused
    assert (row.environment, row.on_deadline, row.deadline_text) == ("prod", "rollback",
                                                                     "in 1 h 30 min")
    assert row.command == ("releasectl resolve delivery-dddddddddddddddd -e prod "
                           "--rollback|--keep -r REASON")
    html = render_overview(view)
    page = Text(html)
    assert "Failed deployments: roll back or keep" in page.text
    assert "rollout failed: <b>CrashLoopBackOff</b>" in page.text  # shown as text, escaped
    assert "<b>" not in html and SECRET not in html
    assert "/api/dashboard/releases/delivery-dddddddddddddddd" in page.links
    assert view.to_dict()["paused"][0]["onDeadline"] == "rollback"
    without = Text(render_overview(overview()))
    assert "Failed deployments" not in without.text
    stale = overview(paused=[paused], statuses={})  # no live status: the ledger's reason
    assert stale.paused[0].failure == "rollout failed: <b>CrashLoopBackOff</b>"
    assert stale.paused[0].deadline is None


def test_release_page_of_a_paused_failure_shows_the_decision_not_a_gate() -> None:
    custom = {"step": "paused", "environment": "prod", "waitingFor": {
        "kind": "failure", "environment": "prod", "event": "failure:prod:1",
        "deadline": (NOW + timedelta(hours=1)).isoformat(), "onDeadline": "keep",
        "failure": "verification failed: health: 503"}}
    shown = {**SHOWN, "state": "Running", "step": "paused", "reason": "verification failed",
             "durable": {"runtimeStatus": "Running", "customStatus": custom}}
    view = build_release_detail(shown, now=NOW)
    assert view.waiting is None and view.paused is not None
    page = Text(render_release(view))
    assert "Failed deployment: roll back or keep" in page.text
    assert "verification failed: health: 503" in page.text and "keep" in page.text
    assert "Waiting for a decision" not in page.text  # no empty gate row
    turn = {**shown, "durable": {"runtimeStatus": "Running", "customStatus": {
        "step": "waiting", "waitingFor": {"kind": "turn", "behind": "delivery-x"}}}}
    turn_view = build_release_detail(turn, now=NOW)
    assert turn_view.waiting is None and turn_view.paused is None
