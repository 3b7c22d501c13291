"""Teams messages about approvals: Adaptive Card 1.4 in the Workflows webhook envelope.

Builds the approval request, its reminders and the outcome card that replaces the
buttons once the decision is made. Pure: no I/O, no clock (pass `now`). Every button is
an `Action.OpenUrl` to the approval page, whose GET only renders a confirmation (link
previews and Safe Links fetch URLs); the decision is a POST on that page. Text from
people or pushes is stripped of markdown and capped, and a message over 28 KB is
refused. Does not post anything: see teams_webhook.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from shared.releases.changes import ReleaseChanges

MAX_MESSAGE_BYTES = 28 * 1024
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
OUTCOMES = ("Approved", "Rejected", "Expired", "Superseded", "RolledBack", "Failed")
MAX_REVIEWERS = 5
SHORT_DIGEST_HEX = 12
TEXT_LIMIT = 200
COMMENT_LIMIT = 500
EVIDENCE_LIMIT = 1000
TAG_MOVED = ("The tag {version} already named another image when this push reached the app:"
             " this release deploys the image that was pushed, by its digest, which the tag"
             " no longer names")
_BRACKETS = re.compile(r"[\[\]()<>]")
# `_` inside a word (first_last@contoso.com) emphasises nothing, so it stays.
_MARKDOWN = re.compile(r"[*`~#|\\]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ApprovalLinks:
    """Approval page URLs (GET shows a confirmation page; the page decides on POST)."""

    approve: str
    reject: str
    details: str


@dataclass(frozen=True)
class ReleaseCard:
    """What a card says about one release waiting at one environment's gate."""

    service: str
    version: str
    digest: str
    environment: str
    deadline: datetime
    links: ApprovalLinks
    pushed_by: str | None = None
    evidence: str | None = None
    reviewers: tuple[tuple[str, str], ...] = ()
    """(approver, page URL) of personal links, for runs without App Service Authentication."""
    overwrites: str | None = None
    """The earlier image of this tag, when it was pushed again as another one."""
    tag_moved: bool = False
    """The tag named another image already when the push reached the app."""
    changes: ReleaseChanges | None = None
    """What the image changes against what runs in the environment (None: not read)."""

    @classmethod
    def from_value(cls, value: ReleaseCard | Mapping[str, Any]) -> ReleaseCard:
        """Accept an instance or a dict (`pushedBy`/`pushed_by`, ISO `deadline`)."""
        if isinstance(value, ReleaseCard):
            return cls._checked(value)
        if not isinstance(value, Mapping):
            raise ValueError(f"release: expected an object, not {type(value).__name__}")
        links = value.get("links")
        if not isinstance(links, Mapping):
            raise ValueError("release.links: expected an object with approve, reject, details")
        card = cls(
            service=_required(value, "service"),
            version=_required(value, "version"),
            digest=_required(value, "digest"),
            environment=_required(value, "environment"),
            deadline=_deadline(value.get("deadline")),
            links=ApprovalLinks(**{k: _required(links, k, "release.links")
                                   for k in ("approve", "reject", "details")}),
            pushed_by=value.get("pushedBy", value.get("pushed_by")),
            evidence=_evidence(value.get("evidence")),
            reviewers=tuple((_required(r, "approver", "release.reviewers"),
                             _required(r, "url", "release.reviewers"))
                            for r in value.get("reviewers") or ()),
            overwrites=earlier_image(value.get("overwrites")),
            tag_moved=value.get("tagMoved", value.get("tag_moved")) is True,
            changes=ReleaseChanges.from_dict(value.get("changes")),
        )
        return cls._checked(card)

    @classmethod
    def _checked(cls, card: ReleaseCard) -> ReleaseCard:
        _deadline(card.deadline)
        for action in ("approve", "reject", "details"):
            _check_link(getattr(card.links, action), f"release.links.{action}")
        for _, url in card.reviewers:
            _check_link(url, "release.reviewers.url")
        return card


def approval_request_card(release: ReleaseCard | Mapping[str, Any], *,
                          now: datetime | None = None) -> dict[str, Any]:
    """The first message: facts about the release and Approve / Reject / Details links."""
    card = ReleaseCard.from_value(release)
    body = [_title(f"Approval needed: {_text(card.service)} {_text(card.version)}"
                   f" to {_text(card.environment)}"),
            _facts(card, now),
            _note("Approve and Reject open the approval page; nothing is decided until you "
                  "confirm there.")]
    if card.overwrites:
        body.insert(1, _note(f"The tag {_text(card.version)} was pushed before as another "
                             f"image ({_text(card.overwrites)}): check that this is the one "
                             "you mean.", attention=True))
    if card.tag_moved:
        body.insert(1, _note(f"{TAG_MOVED.format(version=_text(card.version))}.",
                             attention=True))
    return _message(body, _actions(card))


def reminder_card(release: ReleaseCard | Mapping[str, Any], reminder_number: int,
                  escalated_to: str | None = None, *, total: int | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """A reminder ("Reminder 2 of 2: … waiting for approval until …"), naming any escalation."""
    card = ReleaseCard.from_value(release)
    if reminder_number < 1 or (total is not None and reminder_number > total):
        raise ValueError(f"reminder_number {reminder_number} is not within 1..{total or 'n'}")
    counter = f"Reminder {reminder_number}" + (f" of {total}" if total else "")
    body = [_title(f"{counter}: {_text(card.service)} {_text(card.version)} to "
                   f"{_text(card.environment)} is waiting for approval until "
                   f"{format_deadline(card.deadline, now)}"),
            _facts(card, now)]
    if escalated_to:
        body.append(_note(f"Escalated to {_text(escalated_to)}: please approve or reject.",
                          attention=True))
    return _message(body, _actions(card))


def outcome_card(release: ReleaseCard | Mapping[str, Any], outcome: str,
                 by: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """The decision, without buttons: Approved by X / Rejected by X: … / Expired / Superseded.

    `by` is the approver for Approved and Rejected, and the newer version for Superseded.
    """
    card = ReleaseCard.from_value(release)
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if outcome == "Expired":
        headline = f"Expired: no decision by {_utc(card.deadline)}"
    elif outcome == "RolledBack":
        headline = "Rolled back"
    elif outcome == "Superseded":
        headline = "Superseded" + (f" by {_text(by)}" if by else "")
    else:
        headline = outcome + (f" by {_text(by)}" if by else "")
    if reason:
        headline += f": {_text(reason, COMMENT_LIMIT)}"
    body = [_title(f"{_text(card.service)} {_text(card.version)} to {_text(card.environment)}"),
            {"type": "TextBlock", "text": headline, "wrap": True, "weight": "Bolder",
             "color": "Good" if outcome == "Approved" else "Attention"},
            _facts(card, None, with_deadline=False)]
    return _message(body, [])


def paused_card(release: ReleaseCard | Mapping[str, Any], release_id: str, failure: str,
                pause_deadline: datetime, on_deadline: str, *,
                now: datetime | None = None) -> dict[str, Any]:
    """A failed deployment waiting for a person: what failed, until when, and what then."""
    card = ReleaseCard.from_value(release)
    if on_deadline not in ("rollback", "keep"):
        raise ValueError(f"on_deadline {on_deadline!r} is not rollback or keep")
    then = "it is rolled back" if on_deadline == "rollback" else "it stays in place"
    body = [_title(f"Deployment failed: {_text(card.service)} {_text(card.version)} in "
                   f"{_text(card.environment)}"),
            {"type": "TextBlock", "text": _text(failure, COMMENT_LIMIT), "wrap": True,
             "weight": "Bolder", "color": "Attention"},
            _note(f"Waiting for a person to roll it back or keep it until "
                  f"{format_deadline(pause_deadline, now)}; without a decision {then}.",
                  attention=True),
            _note(f"Decide with: releasectl resolve {_text(release_id)} "
                  f"--environment {_text(card.environment)} --rollback (or --keep) "
                  "--reason …"),
            _facts(card, None, with_deadline=False)]
    return _message(body, [])


def earlier_image(overwrites: object) -> str | None:
    """`sha256:abc… (release, state)` of an `overwrites` record; None without one."""
    if not isinstance(overwrites, Mapping) or not overwrites.get("digest"):
        return None
    where = ", ".join(str(overwrites[k]) for k in ("releaseId", "state") if overwrites.get(k))
    return short_digest(str(overwrites["digest"])) + (f" ({where})" if where else "")


def format_deadline(deadline: datetime, now: datetime | None = None) -> str:
    """`2024-05-03 14:00 UTC (in 3 days)`; without `now`, only the UTC time."""
    when = _utc(deadline)
    if now is None:
        return when
    return f"{when} ({_relative(_deadline(deadline) - _deadline(now))})"


def encode_message(message: Mapping[str, Any]) -> bytes:
    """The message as posted (compact UTF-8 JSON); ValueError when over 28 KB or malformed."""
    attachments = message.get("attachments")
    if message.get("type") != "message" or not isinstance(attachments, list) or not attachments:
        raise ValueError("message: expected {'type': 'message', 'attachments': [card, …]}")
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_MESSAGE_BYTES:
        raise ValueError(f"Teams message is {len(body)} bytes; Teams accepts at most "
                         f"{MAX_MESSAGE_BYTES} (shorten the comment, evidence or links)")
    return body


def short_digest(digest: str) -> str:
    """`sha256:9f2c1a2b3c4d…` from a full digest."""
    algorithm, _, hex_part = digest.partition(":")
    if not hex_part:
        return _text(digest[:SHORT_DIGEST_HEX])
    tail = "…" if len(hex_part) > SHORT_DIGEST_HEX else ""
    return _text(f"{algorithm}:{hex_part[:SHORT_DIGEST_HEX]}{tail}")


def _message(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {
        "type": "AdaptiveCard", "version": "1.4",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": body}
    if actions:
        content["actions"] = actions
    message = {"type": "message",
               "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": content}]}
    encode_message(message)
    return message


def _title(text: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "size": "Medium", "weight": "Bolder",
            "wrap": True}


def _note(text: str, attention: bool = False) -> dict[str, Any]:
    block = {"type": "TextBlock", "text": text, "wrap": True, "isSubtle": not attention}
    if attention:
        block["color"] = "Attention"
    return block


def _facts(card: ReleaseCard, now: datetime | None, with_deadline: bool = True
           ) -> dict[str, Any]:
    facts = [("Service", _text(card.service)), ("Version", _text(card.version)),
             ("Digest", short_digest(card.digest)), ("Environment", _text(card.environment))]
    if card.pushed_by:
        facts.append(("Pushed by", _text(card.pushed_by)))
    if with_deadline:
        facts.append(("Deadline", format_deadline(card.deadline, now)))
    if card.overwrites:
        facts.append(("Tag pushed before as", _text(card.overwrites)))
    if card.tag_moved:
        facts.append(("Tag", "moved on since this push"))
    if card.evidence:
        facts.append(("Verification", _text(card.evidence, EVIDENCE_LIMIT)))
    if card.changes:
        facts += change_facts(card.changes)
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]}


def change_facts(changes: ReleaseChanges) -> list[tuple[str, str]]:
    """Source revision here and running there, the compare link's absence, the versions in
    between: plain text (the link itself is a button)."""
    proposed, running = changes.proposed, changes.running
    facts = [("Source revision", revision_text(proposed.revision, proposed.unknown_revision))]
    if running is None:
        facts.append((f"Running in {_text(changes.environment)}",
                      _text(changes.no_compare or "nothing recorded")))
        return facts
    version = _text(changes.running_version or changes.running_release or "unknown version")
    facts.append((f"Running in {_text(changes.environment)}",
                  f"{version} at {revision_text(running.revision, running.unknown_revision)}"))
    if not changes.compare_url:
        facts.append(("Compare", f"no link: {_text(changes.no_compare or 'unknown')}"))
    if changes.between_unknown:
        facts.append(("Versions in between", f"unknown: {_text(changes.between_unknown)}"))
    else:
        listed = ", ".join(f"{_text(b.version, 40)} ({_text(b.state, 20)})"
                           for b in changes.between) or "none"
        more = f" and {changes.more_between} more" if changes.more_between else ""
        facts.append(("Versions in between", listed + more))
    return facts


def revision_text(revision: str | None, unknown: str | None) -> str:
    """`0123456789ab` (a revision cut to 12 characters), or `unknown: why`."""
    if revision:
        return _text(revision[:SHORT_DIGEST_HEX])
    return f"unknown: {_text(unknown or 'not read')}"


def _actions(card: ReleaseCard) -> list[dict[str, Any]]:
    """Approve / Reject / Details; with personal links, one "Review as …" per approver."""
    links = [("Approve", card.links.approve), ("Reject", card.links.reject),
             ("Details", card.links.details)]
    if card.reviewers:
        links = [(f"Review as {_text(name, 60)}", url)
                 for name, url in card.reviewers[:MAX_REVIEWERS]]
    if card.changes and card.changes.compare_url:  # built from checked parts: https only
        links.append(("Compare changes", card.changes.compare_url))
    return [{"type": "Action.OpenUrl", "title": title, "url": url} for title, url in links]


def _text(value: object, limit: int = TEXT_LIMIT) -> str:
    """One line of plain text: markdown characters stripped, whitespace collapsed, capped."""
    text = _MARKDOWN.sub("", _BRACKETS.sub(" ", str(value)))
    text = _WHITESPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _utc(deadline: datetime) -> str:
    return _deadline(deadline).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _relative(delta: Any) -> str:
    seconds = delta.total_seconds()
    if seconds <= 0:
        return "passed"
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds >= 2 * size:
            return f"in {int(seconds / size + 0.5)} {unit}s"
    minutes = max(1, int(seconds / 60 + 0.5))
    return f"in {minutes} minute" + ("s" if minutes > 1 else "")


def _deadline(value: object) -> datetime:
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"release.deadline: {text[:40]!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise ValueError("release.deadline: expected an ISO 8601 time with a UTC offset")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("release.deadline: needs a UTC offset (e.g. 2024-05-03T14:00:00Z)")
    return value


def _evidence(value: object) -> str | None:
    """A summary string, or {"environment": "qa", "summary": "3/3 checks passed"}."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        summary = str(value.get("summary", ""))
        return f"{value['environment']}: {summary}" if value.get("environment") else summary
    raise ValueError("release.evidence: expected a string or {environment, summary}")


def _required(data: Mapping[str, Any], key: str, where: str = "release") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}.{key}: required, a non-empty string")
    return value


def _check_link(url: object, field: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"https", "http"} or not parts.netloc:
        raise ValueError(f"{field}: expected an absolute http(s) URL of the approval page")
