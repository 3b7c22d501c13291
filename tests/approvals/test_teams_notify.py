"""Posting a card to a gate's Teams webhook against the local webhook sink: success, 429 and
5xx retries, 4xx errors, and what the approval activities make of a failed post."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from activities.approvals import send
from sandbox.teams_sink import TeamsSink
from shared.approvals import teams_webhook
from shared.approvals.teams import approval_request_card, encode_message
from shared.approvals.teams_webhook import TeamsNotificationError
from shared.policy.model import Gate
from shared.secrets.sources import clear_sources, for_spec

SECRET_SETTING = "SECRETS__PROD__TEAMS_WEBHOOK_URL"
SPEC = {"local": {"environment": "prod"}}
RELEASE = {
    "service": "delivery", "version": "v1.4.2", "digest": "sha256:" + "ab" * 32,
    "environment": "prod", "deadline": "2024-05-04T09:30:00Z",
    "links": {"approve": "https://release.example/a?t=1", "reject": "https://release.example/r",
              "details": "https://release.example/d"},
}


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[TeamsSink]:
    monkeypatch.setattr(teams_webhook, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    monkeypatch.setattr(teams_webhook, "MIN_INTERVAL", 0.0)
    clear_sources()
    with TeamsSink() as server:
        monkeypatch.setenv(SECRET_SETTING, server.url)
        yield server
    clear_sources()


def request() -> dict:
    message = approval_request_card(RELEASE, now=datetime(2024, 5, 1, tzinfo=UTC))
    return {"secrets": SPEC, "webhookSecret": "teams-webhook-url", "message": message}


def notify_teams(request: dict) -> dict:
    """Post `message` to the webhook in the secret `webhookSecret`, named by that secret."""
    source = for_spec(request["secrets"])
    webhook = f"secret {request['webhookSecret']!r} of {source.description}"
    body = encode_message(request["message"])
    status = teams_webhook.post_message(source.get(request["webhookSecret"]), body, webhook)
    return {"posted": True, "status": status}


def test_posts_the_card_to_the_webhook_from_the_environment_secret(sink: TeamsSink) -> None:
    assert notify_teams(request()) == {"posted": True, "status": 202}
    assert sink.messages() == [request()["message"]]
    [card] = sink.cards()
    assert card["actions"][0]["url"] == "https://release.example/a?t=1"


def test_429_is_retried_after_retry_after(sink: TeamsSink) -> None:
    sink.fail_next(1, status=429, retry_after="0")
    assert notify_teams(request())["status"] == 202
    assert sink.attempts == 2 and len(sink.cards()) == 1


def test_persistent_500_names_the_secret_but_not_the_url(sink: TeamsSink) -> None:
    sink.fail_next(10, status=500)
    with pytest.raises(TeamsNotificationError) as raised:
        notify_teams(request())
    message = str(raised.value)
    assert "'teams-webhook-url'" in message and "environment prod" in message
    assert "500" in message and "after 4 attempts" in message
    assert sink.url not in message and "127.0.0.1" not in message
    assert sink.attempts == 4 and sink.cards() == []


def test_404_fails_at_once(sink: TeamsSink) -> None:
    sink.fail_next(1, status=404)
    with pytest.raises(TeamsNotificationError, match="answered 404.*not retried") as raised:
        notify_teams(request())
    assert raised.value.status == 404 and sink.attempts == 1
    assert sink.url not in str(raised.value)


def test_unreachable_webhook_error_hides_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teams_webhook, "RETRY_DELAYS", (0.0,))
    clear_sources()
    with TeamsSink() as closed:
        url = closed.url
    monkeypatch.setenv(SECRET_SETTING, url)
    with pytest.raises(TeamsNotificationError, match="ConnectionError after 2 attempts") as raised:
        notify_teams(request())
    assert url not in str(raised.value) and raised.value.__cause__ is None
    assert raised.value.__suppress_context__ or raised.value.__context__ is None


def test_oversized_message_is_refused_before_posting(sink: TeamsSink) -> None:
    body = request()
    body["message"]["attachments"][0]["content"]["body"].append(
        {"type": "TextBlock", "text": "x" * 30_000})
    with pytest.raises(ValueError, match="Teams accepts at most"):
        notify_teams(body)
    assert sink.attempts == 0


def test_print_cards_shows_headline_and_links() -> None:
    lines: list[str] = []
    with TeamsSink(print_cards=True, write=lines.append) as sink:
        teams_webhook.post_message(sink.url, encode_message(request()["message"]),
                                   "test webhook")
    assert lines[0].startswith("[teams] Approval needed: delivery v1.4.2 to prod")
    assert "[teams]   Approve: https://release.example/a?t=1" in lines


def test_a_gate_card_goes_to_the_gates_webhook_and_a_failed_post_is_a_notice(
        sink: TeamsSink) -> None:
    gate_request = {"secrets": SPEC, "gate": {"teamsWebhookSecret": "teams-webhook-url",
                                              "deadlineSeconds": 3600},
                    "releaseId": "delivery-abababababababab", "environment": "prod"}
    gate = Gate.from_dict(gate_request["gate"])
    message = request()["message"]
    assert send(gate_request, message, gate) == {"notified": True, "notice": None}
    assert sink.messages() == [message]
    sink.fail_next(1, status=404)
    failed = send(gate_request, message, gate)
    assert failed["notified"] is False and "answered 404" in failed["notice"]
    assert "'teams-webhook-url'" in failed["notice"] and sink.url not in failed["notice"]
    no_webhook = dataclasses.replace(gate, teams_webhook_secret=None)
    assert send({**gate_request, "gate": {}}, message, no_webhook) == \
        {"notified": False, "notice": None}
    assert len(sink.messages()) == 1
