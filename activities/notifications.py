"""Notification activities: post an approval card to an environment's Teams Workflows webhook.

The webhook URL is a secret of the environment (`webhookSecret` in its secrets source), so
no message, error or log line here contains it: failures name the secret instead. Posts
are paced to about 4 per second per webhook in this process; 429 (honouring Retry-After,
bounded) and 5xx are retried a few times, other 4xx fail at once. Does not build cards:
see shared/approvals/teams.py.
"""

from __future__ import annotations

import threading
import time

import azure.durable_functions as df
import requests

from activities.boundary import marks_failures
from shared.approvals.teams import encode_message
from shared.secrets.sources import for_spec

bp = df.Blueprint()
TIMEOUT = (5.0, 20.0)
RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)
MAX_RETRY_AFTER = 30.0
MIN_INTERVAL = 0.25


class TeamsNotificationError(RuntimeError):
    """Teams did not take the message; says which environment secret holds the webhook."""

    def __init__(self, webhook: str, reason: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(f"Teams webhook from {webhook}: {reason}")


@bp.activity_trigger(input_name="request")
@marks_failures
def notify_teams(request: dict) -> dict:
    """Post `message` (a card message) to the webhook named by `webhookSecret`."""
    if not isinstance(request.get("webhookSecret"), str):
        raise ValueError("webhookSecret: required, the name of the webhook URL secret")
    source = for_spec(request.get("secrets") or {})
    webhook = f"secret {request['webhookSecret']!r} of {source.description}"
    body = encode_message(request.get("message") or {})
    status = post_message(source.get(request["webhookSecret"]), body, webhook)
    return {"posted": True, "status": status}


def post_message(url: str, body: bytes, webhook: str) -> int:
    """POST `body` to `url`, retrying 429 and 5xx; `webhook` names it in errors (not `url`)."""
    attempts = len(RETRY_DELAYS) + 1
    for attempt in range(attempts):
        _pace(url)
        try:
            response = requests.post(url, data=body, timeout=TIMEOUT,
                                     headers={"Content-Type": "application/json"})
        except requests.RequestException as error:
            # The exception's text contains the URL: keep only its kind.
            failure, status, retry_after = type(error).__name__, None, None
        else:
            if response.status_code < 300:
                return response.status_code
            status = response.status_code
            failure = f"answered {status} {response.reason or ''}".rstrip()
            if status != 429 and status < 500:
                raise TeamsNotificationError(webhook, f"{failure}; not retried (check that the "
                                                      "secret holds a current Workflows "
                                                      "webhook URL)", status)
            retry_after = _retry_after(response.headers.get("Retry-After"))
        if attempt + 1 < attempts:
            time.sleep(RETRY_DELAYS[attempt] if retry_after is None else retry_after)
    raise TeamsNotificationError(webhook, f"{failure} after {attempts} attempts", status)


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER) if value else None
    except ValueError:  # an HTTP date: use our own backoff
        return None


_pace_lock = threading.Lock()
_last_post: dict[int, float] = {}


def _pace(url: str) -> None:
    """Keep posts to one webhook at least MIN_INTERVAL apart within this process."""
    key = hash(url)
    with _pace_lock:
        now = time.monotonic()
        start = max(now, _last_post.get(key, 0.0) + MIN_INTERVAL)
        _last_post[key] = start
    if start > now:
        time.sleep(start - now)
