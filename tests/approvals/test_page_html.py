"""The approval page's HTML: facts, buttons, escaping, no script, problems and results."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from shared.approvals.page import (
    PROBLEMS,
    SECURITY_HEADERS,
    Approval,
    ChartShown,
    GateView,
    Problem,
    RunningNow,
    Verdict,
    render_decision,
    render_problem,
    render_result,
)

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
DIGEST = "sha256:" + "9f2c" * 16
CSRF = "c" * 43
GATE = GateView(
    release_id="delivery-9f2c9f2c9f2c9f2c", service="delivery", version="v1.4.2", digest=DIGEST,
    environment="prod", approver="ann@example.com", approver_source="named in this link",
    deadline=NOW + timedelta(days=3), required_approvals=2,
    approvals=(Approval("bob@example.com", NOW - timedelta(hours=1)),),
    running_now=RunningNow("delivery-41aa41aa41aa41aa", "sha256:" + "41aa" * 16, "v1.4.1",
                           NOW - timedelta(days=9)),
    evidence=(("qa", "smoke: 200 OK in 40 ms"),), pushed_by="ci@example.com",
    link_expires_at=NOW + timedelta(days=3))


class Forms(HTMLParser):
    """Forms with their attributes and the (name, value) of their fields and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "form":
            self.forms.append({"attrs": attributes, "fields": [], "buttons": []})
        elif tag in ("input", "textarea") and self.forms:
            self.forms[-1]["fields"].append((attributes.get("name"), attributes.get("value")))
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append((attributes.get("name"), attributes.get("value")))


def parsed(html: str) -> Forms:
    forms = Forms()
    forms.feed(html)
    return forms


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_decision_page_shows_the_facts_an_approver_needs() -> None:
    text = text_of(render_decision(GATE, csrf=CSRF, now=NOW))
    for fact in ("Approve delivery v1.4.2 to prod?", DIGEST, "Service delivery",
                 "Runs there now v1.4.1 (delivery-41aa41aa41aa41aa, sha256:41aa41aa41aa…)"
                 " since 2026-11-13 06:00 UTC",
                 "Verified in qa smoke: 200 OK in 40 ms", "Pushed by ci@example.com",
                 "Deadline 2026-11-25 06:00 UTC (in 3 days)",
                 "Approvals 1 of 2 required: bob@example.com (2026-11-22 05:00 UTC)",
                 "You decide as ann@example.com (named in this link)"):
        assert fact in text


def test_decision_form_posts_to_itself_without_javascript() -> None:
    page = parsed(render_decision(GATE, csrf=CSRF, now=NOW))
    assert page.scripts == 0
    (form,) = page.forms
    assert form["attrs"].get("method") == "post"
    assert "action" not in form["attrs"]  # the page's own address, token included
    assert ("csrf", CSRF) in form["fields"] and ("comment", None) in form["fields"]
    assert form["buttons"] == [("decision", "approve"), ("decision", "reject")]


@pytest.mark.parametrize(("scope", "buttons"), [("approve", [("decision", "approve")]),
                                                ("reject", [("decision", "reject")])])
def test_a_single_decision_link_offers_only_its_button(scope: str, buttons: list) -> None:
    (form,) = parsed(render_decision(replace(GATE, scope=scope), csrf=CSRF, now=NOW)).forms
    assert form["buttons"] == buttons


def test_reject_button_of_a_card_asks_about_rejecting() -> None:
    html = render_decision(replace(GATE, intent="reject"), csrf=CSRF, now=NOW)
    assert "<title>Reject delivery v1.4.2 to prod?</title>" in html


def test_unknown_facts_are_said_so() -> None:
    gate = replace(GATE, running_now=None, evidence=(), pushed_by=None, approvals=())
    text = text_of(render_decision(gate, csrf=CSRF, now=NOW))
    assert "Runs there now nothing recorded" in text
    assert "no earlier environment verified this image" in text
    assert "Pushed by unknown (the registry did not say)" in text
    assert "Approvals 0 of 2 required" in text


def test_a_tag_pushed_again_as_another_image_is_pointed_out() -> None:
    gate = replace(GATE, overwrites="sha256:41aa41aa41aa… (delivery-41aa41aa41aa41aa, Completed)")
    text = text_of(render_decision(gate, csrf=CSRF, now=NOW))
    assert ("Tag pushed before as sha256:41aa41aa41aa… (delivery-41aa41aa41aa41aa, Completed)"
            " : the tag v1.4.2 now names this other image") in text  # the digest in bold
    assert "Tag pushed before" not in text_of(render_decision(GATE, csrf=CSRF, now=NOW))


def test_text_from_pushes_and_people_is_escaped() -> None:
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    gate = replace(GATE, version=hostile, pushed_by=hostile, evidence=(("qa", hostile),),
                   approvals=(Approval(hostile, NOW),))
    html = render_decision(gate, csrf=CSRF, now=NOW)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    verdict = Verdict("approve", True, "Approved", by=hostile, at=NOW, comment=hostile)
    result = render_result("r", "prod", verdict, status_path="/api/releases/r")
    assert "<script>" not in result and "<img" not in result


def test_a_chart_from_a_status_is_escaped_and_absent_without_one() -> None:
    hostile = '<script>alert(1)</script>"><img src=x>'
    gate = replace(GATE, chart=ChartShown(hostile, hostile, hostile, "qa"))
    html = render_decision(gate, csrf=CSRF, now=NOW)
    assert "<script>" not in html and "<img" not in html
    assert "Helm chart &lt;script&gt;" in text_of(html)
    assert "Helm chart" not in render_decision(GATE, csrf=CSRF, now=NOW)


def test_stylesheet_matches_the_content_security_policy() -> None:
    html = render_decision(GATE, csrf=CSRF, now=NOW)
    (css,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "form-action 'self'" in policy
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert SECURITY_HEADERS["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("outcome", "headline", "detail"), [
    ("Approved", "Approved by ann@example.com", "is approved for prod; the release continues"),
    ("Rejected", "Rejected by ann@example.com", "will not go to prod"),
    ("Waiting", "Approval recorded by ann@example.com", "1 of 2 approvals"),
    ("Pending", "Submitted", "the release has not taken it yet"),
    ("Refused", "Not counted", "ann@example.com pushed the image"),
])
def test_result_pages(outcome: str, headline: str, detail: str) -> None:
    reason = {"Waiting": "1 of 2 approvals", "Refused": "ann@example.com pushed the image"}
    verdict = Verdict("approve", outcome != "Refused", outcome, reason=reason.get(outcome),
                      by="ann@example.com", at=NOW, comment="looks good\nshipping")
    html = render_result("delivery-1", "prod", verdict, status_path="/api/releases/delivery-1")
    assert f"<h1>{headline}</h1>" in html
    assert detail in html
    assert "looks good\nshipping" in html
    assert '<a href="/api/releases/delivery-1">' in html


def test_problem_pages_say_what_happened_and_that_nothing_changed() -> None:
    problem = Problem("used", "already decided by ann@example.com at 2026-11-22 06:00 UTC")
    assert problem.status == 409
    html = render_problem(problem)
    assert "<h1>Already decided</h1>" in html
    assert "Already decided by ann@example.com at 2026-11-22 06:00 UTC" in html
    assert "ann@example.com pushed" in render_problem(Problem("forbidden",
                                                              "ann@example.com pushed"))
    assert "Nothing was changed." in html


def test_problem_statuses_are_client_errors_except_unavailable() -> None:
    statuses = {kind: status for kind, (status, _, _) in PROBLEMS.items()}
    assert statuses["expired"] == 410 and statuses["invalid"] == 403
    assert statuses["closed"] == 410 and statuses["used"] == 409
    assert all(400 <= s < 500 for k, s in statuses.items() if k != "unavailable")
    with pytest.raises(ValueError, match="unknown problem kind"):
        Problem("oops", "x")


def test_a_tag_that_moved_on_before_the_push_arrived_is_pointed_out() -> None:
    text = text_of(render_decision(replace(GATE, tag_moved=True), csrf=CSRF, now=NOW))
    assert ("Tag moved on the tag v1.4.2 already named another image when this push reached"
            " the app : this release deploys the image that was pushed") in text
    assert "Tag moved on" not in text_of(render_decision(GATE, csrf=CSRF, now=NOW))
