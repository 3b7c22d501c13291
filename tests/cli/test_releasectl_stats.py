"""`releasectl stats`: the delivery figures as a table and as the API's JSON, and refusals.

Against the app in devhost (tests/dashboard/dashboard_stack.py) with the month of history of
tests/dashboard/delivery_history.py (worked out by hand there); the row for all services,
printed when there are several, against a recording server answering with the figures the
rules compute from the hand-built history of tests/metrics/test_delivery_rules.py.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from sandbox.policy_text import SERVICE
from shared.metrics.delivery import delivery_report
from tests.cli.cli_runner import ctl, one_error_line
from tests.cli.test_releasectl_http import Recorder
from tests.dashboard.dashboard_stack import DashboardStack
from tests.dashboard.delivery_history import seed_delivery_history
from tests.metrics.test_delivery_rules import HISTORY, PRODUCTION, PUSHED, SINCE, UNTIL


def test_stats_prints_the_four_figures_and_json_is_the_api_answer(
        dashboard_app: DashboardStack) -> None:
    seed_delivery_history(dashboard_app.ledger)
    code, out, err = ctl("stats", url=dashboard_app.url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("Delivery to production over the last 30 days (")
    assert lines[1].split() == ["SERVICE", "PRODUCTION", "DEPLOYMENTS", "PER-DAY", "LEAD-TIME",
                                "LEAD-P90", "FAILURE-RATE", "RESTORE"]
    assert lines[2].split() == [SERVICE, "prod", "4", "0.13", "2", "h", "3", "h", "25", "%",
                                "(1", "of", "4)", "2", "h"]
    assert len(lines) == 3  # one service: no row for all of them

    code, out, _ = ctl("stats", "--service", SERVICE, "--days", "7", "--json",
                       url=dashboard_app.url)
    body = json.loads(out)
    assert code == 0 and (body["days"], body["service"]) == (7, SERVICE)
    assert body["services"][SERVICE]["deploymentFrequency"]["deployments"] == 3
    assert body["services"][SERVICE]["leadTime"]["medianSeconds"] == 1.5 * 3600


def test_stats_refusals_exit_1_and_usage_errors_exit_2(dashboard_app: DashboardStack) -> None:
    code, _, err = ctl("stats", "--days", "0", url=dashboard_app.url)
    assert (code, one_error_line(err)) == (1, "days must be a whole number from 1 to 365, "
                                              "not '0'")
    code, _, err = ctl("stats", "--service", "nobody", url=dashboard_app.url)
    assert (code, one_error_line(err)) == (1, "unknown service 'nobody'; the policy names "
                                              "delivery")
    code, _, err = ctl("stats", "--days", "a week", url=dashboard_app.url)
    assert code == 2 and "argument --days: invalid int value: 'a week'" in one_error_line(err)


def test_several_services_get_a_row_for_all_of_them() -> None:
    answer = delivery_report(HISTORY, PRODUCTION, PUSHED, since=SINCE, until=UNTIL).to_dict()
    with Recorder() as app:
        app.answers.append((200, json.dumps(answer), 0.0))
        code, out, err = ctl("stats", "--days", "30", url=app.url)
        (_, path, _, _), = app.requests
    assert (code, err) == (0, "")
    assert urlsplit(path).path == "/api/metrics/delivery"
    assert parse_qs(urlsplit(path).query) == {"days": ["30"]}
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert list(rows) == ["delivery", "quiet", "web", "all"]
    assert rows["delivery"] == ["prod", "7", "0.23", "2", "h", "3", "h", "57.1", "%", "(4",
                                "of", "7)", "1", "h", "(1", "not", "restored)"]
    assert rows["quiet"] == ["prod", "0", "0.00", "no", "data", "no", "data", "no", "data",
                             "no", "data"]
    assert rows["all"] == ["8", "0.27", "3", "h", "24", "h", "50", "%", "(4", "of", "8)",
                           "1", "h", "(1", "not", "restored)"]
