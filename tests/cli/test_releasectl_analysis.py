"""`releasectl show` prints an Analysis table (environment, round, when, verdict, metric =
value) from the API's `analysis`; `--json` prints the API's answer as it came. A recording
server on loopback stands in for the app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.deploy.evidence import Evidence, Measurement, Verdict
from shared.ledger.evidence import RecordedRound
from tests.cli.cli_runner import ctl
from tests.cli.test_releasectl_http import Recorder

AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


@pytest.fixture
def app() -> Iterator[Recorder]:
    with Recorder() as server:
        yield server


def round_of(environment: str, number: int, *measurements: Measurement) -> dict[str, object]:
    """A round as the API answers it (the ledger's own `to_dict`)."""
    return RecordedRound(environment, number, AT + timedelta(seconds=30 * number),
                         Evidence.of("analysis", measurements)).to_dict()


def lines_of(out: str) -> list[str]:
    return [" ".join(line.split()) for line in out.splitlines()]


def test_show_prints_each_round_and_json_is_the_api_answer(app: Recorder) -> None:
    health = Measurement("health", Verdict.PASSED, "4 of 4 requests passed", 1.0)
    p95 = Measurement("p95", Verdict.FAILED, "0.9 s (outside x ≤ 0.5)", 0.9123)
    shown = {"releaseId": "delivery-1", "service": "delivery", "state": "RolledBack",
             "durable": {"runtimeStatus": "Completed", "customStatus": {"step": "done"}},
             "analysis": [round_of("qa", 1, health), round_of("prod", 1, health, p95),
                          round_of("prod", 2, Measurement("errors", Verdict.INCONCLUSIVE,
                                                          "no data", None))]}
    app.answers.append((200, json.dumps(shown), 0.0))
    code, out, err = ctl("show", "delivery-1", url=app.url)
    assert (code, err) == (0, "")
    lines = lines_of(out)
    start = lines.index("Analysis")
    assert lines[start:start + 5] == [
        "Analysis", "ENVIRONMENT ROUND WHEN VERDICT METRICS",
        "qa 1 2026-12-06 09:30:30Z passed health = 1",
        "prod 1 2026-12-06 09:30:30Z failed health = 1; p95 = 0.9123",
        "prod 2 2026-12-06 09:31:00Z inconclusive errors = —"]

    app.answers.append((200, json.dumps(shown), 0.0))
    code, out, err = ctl("show", "delivery-1", "--json", url=app.url)
    assert (code, err) == (0, "")
    assert json.loads(out) == shown  # as the API said it, every round


def test_show_without_rounds_or_with_odd_ones_prints_no_bad_row(app: Recorder) -> None:
    shown = {"releaseId": "delivery-1", "service": "delivery", "state": "Completed",
             "durable": {"runtimeStatus": "Completed", "customStatus": {"step": "done"}}}
    app.answers.append((200, json.dumps(shown), 0.0))
    code, out, err = ctl("show", "delivery-1", url=app.url)
    assert (code, err) == (0, "") and "delivery-1" in out
    assert "Analysis" not in out and "VERDICT" not in out

    odd = {**shown, "analysis": [{"environment": "qa"}, "x", {"round": 1},
                                 {"environment": "qa\n[bold]x", "round": 4, "verdict": "maybe",
                                  "measurements": [{"name": "n" * 500, "value": "7"}]}]}
    app.answers.append((200, json.dumps(odd), 0.0))
    code, out, err = ctl("show", "delivery-1", url=app.url)
    assert (code, err) == (0, "")
    rows = [line for line in lines_of(out) if line.startswith("qa ")]
    assert rows == [f"qa [bold]x 4 unknown {'n' * 79}… = —"]
