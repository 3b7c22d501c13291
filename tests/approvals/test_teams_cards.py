"""Teams approval cards: envelope, links, facts, escaping, size limit and deadline text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.approvals.teams import (
    MAX_MESSAGE_BYTES,
    ApprovalLinks,
    ReleaseCard,
    approval_request_card,
    encode_message,
    format_deadline,
    outcome_card,
    paused_card,
    reminder_card,
)

NOW = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
DEADLINE = datetime(2024, 5, 4, 9, 30, tzinfo=UTC)
LINKS = {
    "approve": "https://release.example/approvals/r1/approve?token=abc.def",
    "reject": "https://release.example/approvals/r1/reject?token=abc.ghi",
    "details": "https://release.example/releases/r1",
}
DIGEST = "sha256:9f2c1a2b3c4d5e6f" + "0" * 48


def release(**overrides: object) -> dict:
    data = {"service": "delivery", "version": "v1.4.2", "digest": DIGEST,
            "environment": "prod", "deadline": "2024-05-04T09:30:00Z", "links": LINKS,
            "pushedBy": "ci@github-actions", "evidence": {"environment": "qa",
                                                          "summary": "3/3 checks passed"}}
    data.update(overrides)
    return data


def content(message: dict) -> dict:
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    return attachment["content"]


def facts(card: dict) -> dict[str, str]:
    [fact_set] = [block for block in card["body"] if block["type"] == "FactSet"]
    return {fact["title"]: fact["value"] for fact in fact_set["facts"]}


def texts(card: dict) -> str:
    return "\n".join(block["text"] for block in card["body"] if block["type"] == "TextBlock")


def test_request_card_is_adaptive_1_4_with_open_url_actions_to_the_given_pages() -> None:
    card = content(approval_request_card(release(), now=NOW))
    assert card["version"] == "1.4"
    assert [(a["type"], a["title"], a["url"]) for a in card["actions"]] == [
        ("Action.OpenUrl", "Approve", LINKS["approve"]),
        ("Action.OpenUrl", "Reject", LINKS["reject"]),
        ("Action.OpenUrl", "Details", LINKS["details"]),
    ]


def test_request_card_states_the_facts() -> None:
    card = content(approval_request_card(release(), now=NOW))
    assert facts(card) == {
        "Service": "delivery", "Version": "v1.4.2", "Digest": "sha256:9f2c1a2b3c4d…",
        "Environment": "prod", "Pushed by": "ci@github-actions",
        "Deadline": "2024-05-04 09:30 UTC (in 3 days)", "Verification": "qa: 3/3 checks passed",
    }
    assert "Approval needed: delivery v1.4.2 to prod" in texts(card)


def test_dataclass_input_gives_the_same_card_and_optional_facts_are_left_out() -> None:
    value = ReleaseCard("delivery", "v1.4.2", DIGEST, "prod", DEADLINE, ApprovalLinks(**LINKS))
    card = content(approval_request_card(value, now=NOW))
    assert set(facts(card)) == {"Service", "Version", "Digest", "Environment", "Deadline"}


def test_nothing_but_the_input_reaches_the_card() -> None:
    message = json.dumps(approval_request_card(release(), now=NOW))
    assert "token=abc.def" in message  # the signed links are expected
    assert "://" not in message.replace(LINKS["approve"], "").replace(
        LINKS["reject"], "").replace(LINKS["details"], "").replace(
        "http://adaptivecards.io/schemas/adaptive-card.json", "")


def test_reminder_names_its_number_deadline_and_escalation_group() -> None:
    card = content(reminder_card(release(), 2, escalated_to="Release Managers", total=2,
                                 now=DEADLINE - timedelta(hours=5)))
    assert texts(card).startswith("Reminder 2 of 2: delivery v1.4.2 to prod is waiting for "
                                  "approval until 2024-05-04 09:30 UTC")
    assert "Escalated to Release Managers" in texts(card)
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl"] * 3
    plain = content(reminder_card(release(), 1, now=NOW))
    assert texts(plain).startswith("Reminder 1: ") and "Escalated" not in texts(plain)


def test_reminder_number_must_be_within_the_total() -> None:
    with pytest.raises(ValueError, match="reminder_number 3"):
        reminder_card(release(), 3, total=2)


@pytest.mark.parametrize(("outcome", "by", "reason", "headline"), [
    ("Approved", "alice@contoso.com", None, "Approved by alice@contoso.com"),
    ("Rejected", "bob@contoso.com", "error rate too high", "Rejected by bob@contoso.com: "
                                                           "error rate too high"),
    ("Expired", None, None, "Expired: no decision by 2024-05-04 09:30 UTC"),
    ("Superseded", "v1.4.3", None, "Superseded by v1.4.3"),
])
def test_outcome_cards_state_the_outcome_and_have_no_buttons(
        outcome: str, by: str | None, reason: str | None, headline: str) -> None:
    card = content(outcome_card(release(), outcome, by=by, reason=reason))
    assert card["version"] == "1.4"
    assert card.get("actions", []) == []
    assert headline in texts(card).splitlines()
    assert "Action." not in json.dumps(card)


def test_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="'Maybe' is not one of"):
        outcome_card(release(), "Maybe")


def test_hostile_comment_loses_its_markdown_and_length() -> None:
    comment = ("**URGENT** [approve here](https://evil.example/steal) _now_\n\n# heading "
               + "x" * 2000)
    card = content(outcome_card(release(), "Rejected", by="[mallory](https://evil.example)",
                                reason=comment))
    headline = texts(card).splitlines()[1]
    for char in "[]()*_#\n":  # links, emphasis, headings, paragraphs
        assert char not in headline
    assert headline.startswith("Rejected by mallory https://evil.example: URGENT approve here "
                               "https://evil.example/steal now heading xxx")
    assert len(headline) < 800 and headline.endswith("…")


def test_hostile_release_fields_are_plain_text_too() -> None:
    card = content(approval_request_card(release(service="svc*[x](https://evil)*",
                                                 pushedBy="__me__"), now=NOW))
    assert facts(card)["Service"] == "svc x https://evil"
    assert facts(card)["Pushed by"] == "me"
    snake = content(approval_request_card(release(pushedBy="first_last@contoso.com"), now=NOW))
    assert facts(snake)["Pushed by"] == "first_last@contoso.com"


def test_message_over_28_kb_is_refused() -> None:
    huge = dict(LINKS, details="https://release.example/r?" + "a" * MAX_MESSAGE_BYTES)
    with pytest.raises(ValueError, match=r"bytes; Teams accepts at most 28672"):
        approval_request_card(release(links=huge), now=NOW)


def test_size_counts_utf8_bytes_as_posted() -> None:
    message = approval_request_card(release(), now=NOW)
    body = encode_message(message)
    assert json.loads(body) == message
    padding = "é" * ((MAX_MESSAGE_BYTES - len(body)) // 2 + 1)  # 2 bytes each
    message["attachments"][0]["content"]["body"].append({"type": "TextBlock", "text": padding})
    with pytest.raises(ValueError, match="Teams accepts at most"):
        encode_message(message)


def test_malformed_input_is_refused_without_echoing_links() -> None:
    with pytest.raises(ValueError, match="release.links.approve: expected an absolute"):
        approval_request_card(release(links=dict(LINKS, approve="javascript:alert(1)")))
    with pytest.raises(ValueError, match="release.service: required"):
        approval_request_card(release(service=""))
    with pytest.raises(ValueError, match="needs a UTC offset"):
        approval_request_card(release(deadline="2024-05-04T09:30:00"))


@pytest.mark.parametrize(("delta", "relative"), [
    (timedelta(days=3), "in 3 days"),
    (timedelta(days=2, hours=13), "in 3 days"),
    (timedelta(hours=36), "in 36 hours"),
    (timedelta(minutes=90), "in 90 minutes"),
    (timedelta(seconds=20), "in 1 minute"),
    (timedelta(0), "passed"),
    (timedelta(hours=-1), "passed"),
])
def test_deadline_is_utc_with_a_relative_hint(delta: timedelta, relative: str) -> None:
    assert format_deadline(DEADLINE, DEADLINE - delta) == f"2024-05-04 09:30 UTC ({relative})"


def test_deadline_in_another_zone_is_shown_in_utc() -> None:
    berlin = DEADLINE.astimezone(timezone(timedelta(hours=2)))
    assert format_deadline(berlin) == "2024-05-04 09:30 UTC"


def test_paused_card_says_what_failed_until_when_and_what_then_without_buttons() -> None:
    until = NOW + timedelta(hours=2)
    card = content(paused_card(release(), "delivery-9f2c1a2b3c4d5e6f",
                               "rollout failed: *CrashLoopBackOff* [pod](http://x)", until,
                               "rollback", now=NOW))
    said = texts(card)
    assert card["body"][0]["text"] == "Deployment failed: delivery v1.4.2 in prod"
    assert "rollout failed: CrashLoopBackOff pod http://x" in said  # plain text only
    assert "until 2024-05-01 11:30 UTC (in 2 hours); without a decision it is rolled back" \
        in said
    assert "releasectl resolve delivery-9f2c1a2b3c4d5e6f --environment prod" in said
    assert "actions" not in card
    assert "Deadline" not in facts(card)  # the gate's deadline is over; the pause has its own
    kept = texts(content(paused_card(release(), "r1", "x", until, "keep", now=NOW)))
    assert "without a decision it stays in place" in kept
    with pytest.raises(ValueError, match="on_deadline 'retry'"):
        paused_card(release(), "r1", "x", until, "retry")


def test_a_tag_pushed_again_is_pointed_out_on_the_cards() -> None:
    earlier = {"releaseId": "delivery-41aa41aa41aa41aa", "digest": "sha256:" + "41aa" * 16,
               "state": "Completed"}
    card = content(approval_request_card(release(overwrites=earlier), now=NOW))
    assert facts(card)["Tag pushed before as"] == (
        "sha256:41aa41aa41aa… delivery-41aa41aa41aa41aa, Completed")
    assert card["body"][1]["color"] == "Attention"
    assert card["body"][1]["text"].startswith("The tag v1.4.2 was pushed before as another "
                                              "image")
    plain = content(approval_request_card(release(), now=NOW))
    assert "Tag pushed before as" not in facts(plain)
    assert "Tag pushed before as" in facts(content(reminder_card(release(overwrites=earlier),
                                                                 1, now=NOW)))


def test_a_tag_that_moved_on_before_the_push_arrived_is_pointed_out_on_the_cards() -> None:
    card = content(approval_request_card(release(tagMoved=True), now=NOW))
    assert facts(card)["Tag"] == "moved on since this push"
    assert card["body"][1]["color"] == "Attention"
    assert card["body"][1]["text"] == (
        "The tag v1.4.2 already named another image when this push reached the app: this"
        " release deploys the image that was pushed, by its digest, which the tag no longer"
        " names.")
    assert "Tag" not in facts(content(approval_request_card(release(), now=NOW)))
    assert "Tag" not in facts(content(approval_request_card(release(tagMoved="yes"), now=NOW)))
