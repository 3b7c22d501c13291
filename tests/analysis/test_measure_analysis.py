"""`measure_analysis` through devhost: one round of an analysis against a real Prometheus
(scraping a loopback target) and an HTTP endpoint; what each outcome becomes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.prometheus import LocalPrometheus
from sandbox.tools import free_port
from shared.deploy.evidence import Evidence, Verdict
from tests.analysis.loopback import LoopbackServer, MetricsTarget
from tests.apphost import run_activities

JOB = "measure-analysis"
RATE = ('sum(rate(demo_http_requests_total{job="${service}",code=~"5.."}[10s]))'
        ' / sum(rate(demo_http_requests_total{job="${service}"}[10s]))')
VARIABLES = {"service": JOB, "environment": "qa", "version": "1.0.0",
             "digest": "sha256:" + "1" * 64, "stable": "web", "canary": "web",
             "windowStart": "2026-12-06T16:00:00Z"}


@pytest.fixture(scope="module")
def scraped(prometheus: LocalPrometheus) -> Iterator[LocalPrometheus]:
    with LoopbackServer(MetricsTarget()) as target:
        prometheus.add_targets([{"targets": [target.host], "labels": {"job": JOB}}])
        prometheus.wait_for(f'count_over_time(demo_zero{{job="{JOB}"}}[1m]) >= 3')
        yield prometheus


def metric(name: str, url: str, query: str, **threshold: float) -> dict[str, Any]:
    return {"name": name, "threshold": {"min": threshold.get("min"),
                                        "max": threshold.get("max")},
            "provider": {"kind": "prometheus", "url": url, "query": query, "auth": "none",
                         "bearerSecret": None, "managedIdentityClientId": None}}


def analysis(*metrics: dict[str, Any], retries: int = 0) -> dict[str, Any]:
    return {"intervalSeconds": 30, "measurements": 3, "durationSeconds": None,
            "failureLimit": 0, "onNoData": "fail", "retries": retries,
            "metrics": list(metrics)}


def measure(tmp_path: Path, *metrics: dict[str, Any]) -> Evidence:
    (answer,) = run_activities(tmp_path / "devhost", ("measure_analysis", {
        "analysis": analysis(*metrics), "variables": VARIABLES,
        "secrets": {"local": {"environment": "qa"}}, "round": 1, "record": None}))
    assert not isinstance(answer, Exception), answer
    return Evidence.from_dict(answer)


def test_a_round_measures_each_metric_against_its_threshold(
        tmp_path: Path, scraped: LocalPrometheus) -> None:
    evidence = measure(tmp_path, metric("error-rate", scraped.url, RATE, max=0.5),
                       metric("strict", scraped.url, RATE, max=0.1),
                       metric("absent", scraped.url, 'demo_nothing{job="${service}"}', max=1))
    by_name = {m.name: m for m in evidence.measurements}
    assert evidence.kind == "analysis" and evidence.verdict is Verdict.FAILED
    assert by_name["error-rate"].verdict is Verdict.PASSED
    assert by_name["error-rate"].value == pytest.approx(0.2)
    assert by_name["error-rate"].details["outcome"] == "passed"
    assert by_name["strict"].verdict is Verdict.FAILED
    assert by_name["strict"].summary.startswith("0.2 (outside x ≤ 0.1)")
    assert by_name["absent"].verdict is Verdict.INCONCLUSIVE
    assert by_name["absent"].details == {"outcome": "noData", "fatal": False}
    assert by_name["absent"].summary == "no data: no series matched"


def test_a_rejected_query_is_fatal_and_an_unreachable_one_is_no_data(
        tmp_path: Path, scraped: LocalPrometheus) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    evidence = measure(tmp_path, metric("bad", scraped.url, "sum(rate(", max=1),
                       metric("gone", closed, "up", max=1))
    bad, gone = evidence.measurements
    assert bad.verdict is Verdict.FAILED and bad.details["fatal"] is True
    assert "parse error" in bad.summary
    assert gone.verdict is Verdict.INCONCLUSIVE and gone.details["outcome"] == "noData"
    assert "refused" in gone.summary.lower()


def test_a_request_it_cannot_read_is_refused(tmp_path: Path) -> None:
    answers = run_activities(tmp_path / "devhost",
                             ("measure_analysis", {"analysis": {"metrics": []},
                                                   "variables": VARIABLES}),
                             ("measure_analysis", {"analysis": analysis(), "variables": 3}))
    for answer in answers:
        assert isinstance(answer, Exception) and "[permanent]" in str(answer)
