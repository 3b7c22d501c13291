"""The approval page's HTML: the decision page, the result page and the problem pages.

Jinja2 templates (autoescaped) beside this module. No JavaScript: the form has no `action`,
so it posts to the page's own address and the signed token is never written into the
page. Responses carry a Content-Security-Policy that allows only the page's own stylesheet
(by hash) and posting to itself, and are never cached or framed. Pure: no I/O, no clock
(pass `now`). Does not verify tokens or decide anything: see shared/approvals/desk.py.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from shared.approvals.teams import format_deadline, short_digest
from shared.releases.changes import ReleaseChanges
from shared.releases.rounds import AnalysisRound
from shared.text import one_line

COMMENT_LIMIT: Final = 500
VERDICTS_SHOWN: Final = 20  # an environment's latest rounds whose verdicts the page lists
HTML_TYPE: Final = "text/html; charset=utf-8"
CSS: Final = """
body{margin:0;background:#f4f5f7;color:#1d2330;font:16px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:760px;margin:24px auto;background:#fff;border-radius:8px;padding:24px 32px;
box-shadow:0 1px 3px rgba(0,0,0,.12);border-top:6px solid #6264a7}
main.problem{border-top-color:#c4314b}main.result.good{border-top-color:#237b4b}
main.result.bad{border-top-color:#c4314b}main.result.wait{border-top-color:#c19c00}
h1{font-size:1.4em;margin:.2em 0 .6em}.lead{font-size:1.05em}
table.facts{border-collapse:collapse;width:100%;margin:12px 0 20px}
.facts th{text-align:left;vertical-align:top;width:11em;color:#555;font-weight:600;
padding:6px 12px 6px 0;border-bottom:1px solid #eee}
.facts td{padding:6px 0;border-bottom:1px solid #eee;overflow-wrap:anywhere}
code{font:14px/1.3 ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace}
label{display:block;font-weight:600;margin:8px 0 4px}
textarea{width:100%;box-sizing:border-box;font:inherit;padding:8px;border:1px solid #bbb;
border-radius:4px}
.buttons{margin:16px 0 8px;display:flex;gap:12px}
button{font:inherit;font-weight:600;padding:10px 28px;border:0;border-radius:4px;color:#fff;
cursor:pointer}
button.approve{background:#237b4b}button.reject{background:#c4314b}
.subtle{color:#666}.small{font-size:.875em}.comment{white-space:pre-wrap}
.verdict-failed{color:#c4314b;font-weight:600}a{color:#4b4da0}.verdict-inconclusive,.verdict-unknown{
color:#8a6d00;font-weight:600}
"""
CSS_HASH: Final = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (f"default-src 'none'; style-src 'sha256-{CSS_HASH}';"
                                " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "Cache-Control": "no-store",
    # Same-origin posts keep their Origin; the token in the address never goes elsewhere.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}

# kind: (HTTP status, title, hint)
PROBLEMS: Final[dict[str, tuple[int, str, str | None]]] = {
    "invalid": (403, "This approval link is not valid",
                "Open the newest link from Teams, or ask for a new one."),
    "mismatch": (403, "This link is for another release", None),
    "expired": (410, "This approval link has expired", None),
    "scope": (403, "This link may not make that decision", None),
    "used": (409, "Already decided", None),
    "closed": (410, "This approval is closed", None),
    "not-waiting": (409, "Not waiting for approval", None),
    "forbidden": (403, "You may not approve this release", None),
    "unauthenticated": (401, "Sign-in required",
                        "Sign in to the release app and open the link again."),
    "not-found": (404, "No such release", None),
    "bad-request": (400, "This request cannot be used", None),
    "forgery": (403, "This form cannot be used", None),
    "unsupported": (415, "Unsupported request", None),
    "unavailable": (503, "Approvals are unavailable right now",
                    "Try again in a minute; the operators have the details in the app log."),
}


class Problem(Exception):
    """Why a link or post cannot be used: an HTTP status, a title and a one-line message."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in PROBLEMS:
            raise ValueError(f"unknown problem kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.status, self.title, self.hint = PROBLEMS[kind]
        self.message = one_line(message)


@dataclass(frozen=True)
class Approval:
    """One counted approval so far."""

    by: str
    at: datetime | None = None


@dataclass(frozen=True)
class RunningNow:
    """What runs in the environment now, from the ledger."""

    release_id: str
    digest: str
    version: str | None = None
    since: datetime | None = None

    def describe(self) -> str:
        version = self.version or "unknown version"
        text = f"{version} ({self.release_id}, {short_digest(self.digest)})"
        return text + (f" since {when(self.since)}" if self.since else "")


@dataclass(frozen=True)
class ChartShown:
    """The Helm chart that goes on with the image: the one `environment` was deployed with."""

    name: str
    version: str
    digest: str | None
    environment: str


@dataclass(frozen=True)
class AnalysisBefore:
    """An environment before the gate: its rounds' verdicts (the latest `VERDICTS_SHOWN`,
    oldest first) and the numbers of its last round."""

    environment: str
    verdicts: tuple[str, ...]
    last: AnalysisRound
    earlier: int = 0

    @classmethod
    def of(cls, environment: str, rounds: tuple[AnalysisRound, ...]) -> AnalysisBefore:
        """From an environment's rounds, in round order (at least one)."""
        shown = rounds[-VERDICTS_SHOWN:]
        return cls(environment, tuple(r.verdict for r in shown), rounds[-1],
                   len(rounds) - len(shown))


@dataclass(frozen=True)
class GateView:
    """What the decision page shows about one release waiting at one environment's gate."""

    release_id: str
    service: str
    version: str
    digest: str
    environment: str
    approver: str
    approver_source: str | None = None
    deadline: datetime | None = None
    required_approvals: int = 1
    approvals: tuple[Approval, ...] = ()
    running_now: RunningNow | None = None
    evidence: tuple[tuple[str, str], ...] = ()
    pushed_by: str | None = None
    overwrites: str | None = None
    """The earlier image of this tag, when it was pushed again as another one."""
    tag_moved: bool = False
    """The tag named another image already when the push reached the app."""
    scope: str = "decide"
    link_expires_at: datetime | None = None
    intent: str | None = None
    """`approve` or `reject` when the person came from that button of a card."""
    chart: ChartShown | None = None
    """A Helm target's chart (pinned at the first Helm environment); None for others."""
    analysis: tuple[AnalysisBefore, ...] = ()
    """The analysis rounds of the environments before the gate, in the plan's order."""
    changes: ReleaseChanges | None = None
    """What the image changes against what runs there, as read when the gate opened."""

    def may(self, decision: str) -> bool:
        """Whether the link's scope offers this button."""
        return self.scope in ("decide", decision)


@dataclass(frozen=True)
class Verdict:
    """The answer to one decision: counted or not, and where the gate stands now.

    `outcome`: Approved / Rejected (the gate ended so), Waiting (counted; more approvals
    needed), Refused (not counted, see `reason`), Pending (not taken yet).
    """

    decision: str
    counted: bool
    outcome: str
    reason: str | None = None
    by: str | None = None
    at: datetime | None = None
    comment: str | None = field(default=None, repr=False)


def sentence(text: str) -> str:
    """Text with a capital first letter when its first word is a plain word (not an address)."""
    first = text.split(" ", 1)[0].rstrip(",;:")
    if first.isalpha() and first.islower():
        return text[:1].upper() + text[1:]
    return text


def when(moment: datetime | None) -> str:
    """`2026-11-25 06:00 UTC`, or an empty string."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=select_autoescape(default=True, default_for_string=True),
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_templates.globals.update(css=Markup(CSS), when=when, sentence=sentence,
                          comment_limit=COMMENT_LIMIT)


def render_decision(gate: GateView, *, csrf: str, now: datetime) -> str:
    """The decision page: the facts, who decides, an optional comment, Approve / Reject."""
    deadline = format_deadline(gate.deadline, now) if gate.deadline else "none"
    expiry = (format_deadline(gate.link_expires_at, now).replace("(in ", "(in about ")
              if gate.link_expires_at else "with the gate")
    return _templates.get_template("decision.html").render(
        gate=gate, csrf=csrf, deadline=deadline, link_expiry=expiry)


def render_result(release_id: str, environment: str, verdict: Verdict, *,
                  status_path: str) -> str:
    """The page after a decision: what was recorded and where the release goes next."""
    headline, detail, tone = _result_text(release_id, environment, verdict)
    return _templates.get_template("result.html").render(
        headline=headline, detail=detail, tone=tone, verdict=verdict, release_id=release_id,
        environment=environment, status_path=status_path)


def render_problem(problem: Problem) -> str:
    """A page saying why the link or post cannot be used (nothing was changed)."""
    return _templates.get_template("problem.html").render(problem=problem)


def _result_text(release_id: str, environment: str, verdict: Verdict) -> tuple[str, str, str]:
    by = f" by {verdict.by}" if verdict.by else ""
    if verdict.outcome == "Approved":
        return (f"Approved{by}", f"{release_id} is approved for {environment}; the release"
                                 " continues.", "good")
    if verdict.outcome == "Rejected":
        return (f"Rejected{by}", f"{release_id} will not go to {environment}.", "bad")
    if verdict.outcome == "Waiting":
        more = f"{release_id} still needs more approvals for {environment}."
        return (f"Approval recorded{by}", verdict.reason or more, "wait")
    if verdict.outcome == "Pending":
        return ("Submitted", "Submitted; the release has not taken it yet. Check the release"
                             " status in a moment.", "wait")
    return ("Not counted", verdict.reason or "The decision was not counted.", "bad")
