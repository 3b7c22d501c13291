"""A release page's Analysis section, without I/O: each environment's rounds (time,
verdict, each metric's number and summary), from the releases API's `analysis`; nothing
when there are no rounds; provider text escaped and bounded."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from shared.dashboard import build_release_detail, render_release
from shared.deploy.evidence import Evidence, Measurement, Verdict
from shared.ledger.evidence import RecordedRound
from shared.releases.rounds import METRICS_PER_ROUND, SUMMARY_LIMIT
from tests.dashboard.test_dashboard_view import NOW, SECRET, SHOWN, Text


def recorded(environment: str, number: int, *measurements: Measurement,
             minutes_ago: int = 0) -> dict[str, Any]:
    """A round as `GET /api/releases/{id}` answers it (the ledger's own `to_dict`)."""
    return RecordedRound(environment, number, NOW - timedelta(minutes=minutes_ago),
                         Evidence.of("analysis", measurements)).to_dict()


def health(value: float, verdict: Verdict = Verdict.PASSED) -> Measurement:
    return Measurement("health", verdict, f"{int(value * 4)} of 4 requests passed", value)


P95 = Measurement("p95-latency", Verdict.PASSED, "0.231 s (within x ≤ 0.5)", 0.23141)


def test_each_environment_shows_its_rounds_with_time_verdict_numbers_and_summaries() -> None:
    rounds = [recorded("qa", 1, health(1.0), P95, minutes_ago=9),
              recorded("qa", 2, health(1.0), P95, minutes_ago=8),
              recorded("prod", 1, health(0.5, Verdict.FAILED), minutes_ago=1)]
    view = build_release_detail({**SHOWN, "analysis": rounds}, now=NOW)
    assert [(a.environment, [(r.round, r.verdict) for r in a.rounds]) for a in view.analysis] \
        == [("qa", [(1, "passed"), (2, "passed")]), ("prod", [(1, "failed")])]
    page = Text(render_release(view))
    assert "Analysis qa Round When Verdict Metrics" in page.text
    assert ("1 2026-11-22 05:51:00 UTC passed health = 1 4 of 4 requests passed"
            " p95-latency = 0.2314 0.231 s (within x ≤ 0.5)") in page.text
    assert "prod Round When Verdict Metrics 1 2026-11-22 05:59:00 UTC failed health = 0.5" \
        " 2 of 4 requests passed" in page.text
    data = view.to_dict()["analysis"]
    assert [a["environment"] for a in data] == ["qa", "prod"]
    assert data[1]["rounds"][0]["metrics"] == [
        {"name": "health", "verdict": "failed", "value": 0.5,
         "summary": "2 of 4 requests passed"}]
    assert data[1]["rounds"][0]["at"] == (NOW - timedelta(minutes=1)).isoformat()


def test_no_rounds_no_section() -> None:
    for shown in (SHOWN, {**SHOWN, "analysis": []}, {**SHOWN, "analysis": "nonsense"}):
        view = build_release_detail(shown, now=NOW)
        assert view.analysis == () and view.to_dict()["analysis"] == []
        html = render_release(view)
        assert 'id="analysis"' not in html and "Analysis" not in Text(html).text


def test_provider_text_is_escaped_and_every_part_is_bounded() -> None:
    hostile = Measurement("<script>alert(1)</script>", Verdict.INCONCLUSIVE,
                          'provider said: <img src=x onerror="alert(1)"> ' + "x" * 5000
                          + f" {SECRET}", None)
    many = [recorded("prod", n, hostile, *[P95] * 30, minutes_ago=40 - n)
            for n in range(1, 26)]
    broken = [{"environment": "prod"}, {"round": 3}, "not a round",
              {"environment": "qa", "round": True}]
    view = build_release_detail({**SHOWN, "analysis": [*broken, *many]}, now=NOW)
    (prod,) = view.analysis
    assert [r.round for r in prod.rounds] == list(range(6, 26)) and prod.earlier == 5
    first = prod.rounds[0]
    assert len(first.metrics) == METRICS_PER_ROUND
    assert first.verdict == "inconclusive" and first.metrics[0].number == "—"
    assert len(first.metrics[0].summary) == SUMMARY_LIMIT
    html = render_release(view)
    assert "<script>alert" not in html and "<img" not in html and SECRET not in html
    assert re.search(r"&lt;script&gt;alert\(1\)&lt;/script&gt; = —", html)
    assert "5 earlier rounds not shown" in Text(html).text
    assert SECRET not in json.dumps(view.to_dict())
