"""What a release changes, on the Teams cards and the approval page: revisions, the compare
link (a button, a link), the versions in between; unknown labels said, hostile ones inert."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from activities.approvals import gate_changes
from shared.approvals.page import GateView, render_decision
from shared.approvals.requests import release_card
from shared.approvals.teams import approval_request_card, outcome_card, reminder_card
from shared.registry.provenance import Provenance
from shared.releases.changes import Between, ReleaseChanges

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
OLD, NEW = "0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedcba9876543210fedcba98"
SOURCE = "https://github.com/contoso/delivery"
COMPARE = f"{SOURCE}/compare/{OLD}...{NEW}"
DIGEST = "sha256:" + "9f2c" * 16
CHANGES = ReleaseChanges(
    "prod", Provenance(DIGEST, SOURCE, NEW, "1.4.2"),
    Provenance("sha256:" + "41aa" * 16, SOURCE, OLD, "1.4.0"), "delivery-41aa41aa41aa41aa",
    "1.4.0", COMPARE, None,
    (Between("delivery-1", "1.4.1", "Failed"), Between("delivery-2", "1.4.1b", "Superseded")))
REQUEST = {"releaseId": "delivery-9f2c9f2c9f2c9f2c", "service": "delivery",
           "version": "1.4.2", "digest": DIGEST, "environment": "prod",
           "deadline": (NOW + timedelta(days=3)).isoformat()}
LINKS: dict[str, Any] = {"approvalPage": "https://app.example/api/releases/r/approvals/prod?"
                                         "token=t", "approvalLinks": []}


def card_of(message: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    content = message["attachments"][0]["content"]
    (facts,) = [b for b in content["body"] if b["type"] == "FactSet"]
    return ({f["title"]: f["value"] for f in facts["facts"]},
            [(a["title"], a["url"]) for a in content.get("actions", [])])


def test_the_request_card_shows_revisions_versions_in_between_and_a_compare_button() -> None:
    card = release_card(REQUEST, {**LINKS, "changes": CHANGES.to_dict()})

    facts, actions = card_of(approval_request_card(card, now=NOW))

    assert facts["Source revision"] == NEW[:12]
    assert facts["Running in prod"] == f"1.4.0 at {OLD[:12]}"
    assert facts["Versions in between"] == "1.4.1 (Failed), 1.4.1b (Superseded)"
    assert "Compare" not in facts
    assert actions[-1] == ("Compare changes", COMPARE)
    # Reminders and the outcome carry the same facts (the links carry the changes).
    reminder_facts, reminder_actions = card_of(reminder_card(card, 1, total=2, now=NOW))
    assert reminder_facts["Source revision"] == NEW[:12]
    assert reminder_actions[-1] == ("Compare changes", COMPARE)
    outcome_facts, outcome_actions = card_of(outcome_card(card, "Approved", "ann"))
    assert outcome_facts["Running in prod"] == f"1.4.0 at {OLD[:12]}" and outcome_actions == []


def test_unknown_labels_are_said_and_give_no_button() -> None:
    unlabelled = replace(CHANGES, proposed=Provenance(DIGEST), compare_url=None,
                         no_compare="the proposed image's revision is unknown", between=(),
                         between_unknown=None)
    card = release_card(REQUEST, {**LINKS, "changes": unlabelled.to_dict()})

    facts, actions = card_of(approval_request_card(card, now=NOW))

    assert facts["Source revision"] == ("unknown: the image carries no"
                                        " org.opencontainers.image.revision label or annotation")
    assert facts["Compare"] == "no link: the proposed image's revision is unknown"
    assert facts["Versions in between"] == "none"
    assert [title for title, _ in actions] == ["Approve", "Reject", "Details"]


def test_nothing_running_and_no_changes_read() -> None:
    first = ReleaseChanges("prod", Provenance(DIGEST, SOURCE, NEW),
                           no_compare="nothing recorded as running in prod")
    facts, _ = card_of(approval_request_card(
        release_card(REQUEST, {**LINKS, "changes": first.to_dict()}), now=NOW))
    assert facts["Running in prod"] == "nothing recorded as running in prod"
    assert "Versions in between" not in facts

    plain, actions = card_of(approval_request_card(release_card(REQUEST, LINKS), now=NOW))
    assert "Source revision" not in plain and len(actions) == 3


def test_a_hostile_source_is_text_on_the_card_and_never_a_button() -> None:
    hostile = CHANGES.to_dict()
    hostile["proposed"]["source"] = "javascript:alert(1)"
    hostile["running"]["source"] = "javascript:alert(1)"
    hostile["compareUrl"] = "javascript:alert(1)"

    _, actions = card_of(approval_request_card(
        release_card(REQUEST, {**LINKS, "changes": hostile}), now=NOW))

    assert all(url.startswith("https://") for _, url in actions)
    assert "Compare changes" not in [title for title, _ in actions]


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def anchors(html: str) -> list[str]:
    parser = Anchors()
    parser.feed(html)
    return parser.hrefs


GATE = GateView(release_id="delivery-9f2c9f2c9f2c9f2c", service="delivery", version="1.4.2",
                digest=DIGEST, environment="prod", approver="ann@example.com",
                deadline=NOW + timedelta(days=3), changes=CHANGES)


def test_the_page_shows_both_revisions_the_compare_link_and_the_versions_between() -> None:
    html = render_decision(GATE, csrf="c" * 43, now=NOW)

    assert anchors(html) == [COMPARE]
    assert f'<code class="revision">{NEW}</code>' in html
    assert f'<code class="revision">{OLD}</code> (1.4.0)' in html
    assert f"Compare {OLD[:12]}…{NEW[:12]}" in html
    assert 'rel="noopener noreferrer"' in html
    assert "1.4.1 <span class=\"subtle small\">(Failed)</span>" in html


def test_the_page_says_when_labels_are_absent_or_not_read() -> None:
    unlabelled = replace(CHANGES, proposed=Provenance(DIGEST), compare_url=None,
                         no_compare="the proposed image's revision is unknown")
    html = render_decision(replace(GATE, changes=unlabelled), csrf="c" * 43, now=NOW)
    assert anchors(html) == []
    assert "unknown: the image carries no org.opencontainers.image.revision" in html
    assert "no compare link: the proposed image&#39;s revision is unknown" in html

    untold = render_decision(replace(GATE, changes=None), csrf="c" * 43, now=NOW)
    assert "not read for this gate" in untold and anchors(untold) == []


def test_hostile_labels_are_escaped_text_on_the_page() -> None:
    hostile = CHANGES.to_dict()
    hostile["proposed"]["source"] = '"><script>alert(1)</script>'
    hostile["proposed"]["revision"] = "<img src=x onerror=alert(1)>"
    hostile["compareUrl"] = "javascript:alert(1)"
    changes = ReleaseChanges.from_dict(hostile)

    html = render_decision(replace(GATE, changes=changes), csrf="c" * 43, now=NOW)

    assert "<script>" not in html and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert anchors(html) == []


def test_the_gate_opens_without_changes_when_they_cannot_be_read() -> None:
    # A request written before the changes were read names no image: nothing is read.
    assert gate_changes(REQUEST) is None
    # A registry that cannot even be named: logged, and the gate opens without them.
    assert gate_changes({**REQUEST, "image": {"registry": {"url": "https://h/x"},
                                              "repository": "delivery"}}) is None
