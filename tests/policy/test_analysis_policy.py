"""`analysis` and `strategy` of an environment: snapshot form, defaults, and bad inputs' errors."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from analysis_samples import ANALYSIS, PROD_ANALYSIS, QA_ANALYSIS, RESOURCE_ID
from helm_samples import line
from policy_samples import BASE, edit, problems
from test_policy_snapshot import RICH

from shared.policy import Environment, parse_policy
from shared.policy.analysis import (
    Analysis,
    AppInsightsProvider,
    HttpProvider,
    JobProvider,
    Metric,
    PrometheusProvider,
    Threshold,
    expand,
    variable_problem,
)
from shared.policy.strategy import ROLLING, BlueGreen, Canary, CanaryStep, canary_pods

F = "release-policy.yaml"
QA = "services.delivery.environments[0]"
PROD = "services.delivery.environments[1]"
RECORDED = json.loads((Path(__file__).parent / "recorded" / "release_inputs.json").read_text())


def snapshot(text: str = ANALYSIS) -> list[dict[str, Any]]:
    environments: list[dict[str, Any]] = json.loads(json.dumps(
        parse_policy(text, F).service("delivery").snapshot()))["environments"]
    return environments


def test_the_example_writes_every_field_with_defaults_applied() -> None:
    qa, prod = snapshot()
    assert qa["analysis"] == {
        "intervalSeconds": 30, "measurements": 10, "durationSeconds": 300, "failureLimit": 1,
        "onNoData": "inconclusive", "retries": 3,
        "metrics": [
            {"name": "error-rate",
             "provider": {"kind": "prometheus", "url": "http://127.0.0.1:9090",
                          "query": 'sum(rate(http_requests_total{pod=~"${canary}-.*",'
                                   'code=~"5.."}[1m]))',
                          "auth": "none", "bearerSecret": None, "managedIdentityClientId": None},
             "threshold": {"min": None, "max": 0.05}},
            {"name": "health",
             "provider": {"kind": "http", "url": "http://${canary}.delivery:8080/healthz",
                          "value": "successRate", "requests": 5, "expectStatus": 200,
                          "bodyContains": None, "jsonField": None, "jsonEquals": None,
                          "headers": {"Authorization": "probe-token"},
                          "attemptTimeoutSeconds": 5.0},
             "threshold": {"min": 0.95, "max": None}},
            {"name": "latency",
             "provider": {"kind": "http", "url": "http://delivery.qa:8080/",
                          "value": "latencyMs", "requests": 1, "expectStatus": 200,
                          "bodyContains": None, "jsonField": None, "jsonEquals": None,
                          "headers": {}, "attemptTimeoutSeconds": 2.0},
             "threshold": {"min": 0.0, "max": 300.0}},
            {"name": "acceptance",
             "provider": {"kind": "job", "image": "myacr.azurecr.io/delivery-tests:1",
                          "command": ["pytest"], "args": ["--version", "${version}"],
                          "backoffLimit": 1, "timeoutSeconds": 30},
             "threshold": {"min": 1.0, "max": None}}]}
    assert qa["strategy"] == {"kind": "canary", "replicas": 10,
                              "steps": [{"weight": 10}, {"pauseSeconds": 30}, {"weight": 50}]}
    assert prod["analysis"] == {
        "intervalSeconds": 60, "measurements": 3, "durationSeconds": None, "failureLimit": 0,
        "onNoData": "fail", "retries": 2,
        "metrics": [
            {"name": "failures",
             "provider": {"kind": "appInsights",
                          "resourceId": "/subscriptions/5d2c4b8e-9f3a-4e1b-8c7d-2a6f0e9b3c41/"
                                        "resourceGroups/rg/providers/microsoft.insights/"
                                        "components/delivery",
                          "workspaceId": None,
                          "query": "requests | where timestamp > datetime(${windowStart}) |"
                                   " summarize failed = countif(success == false)",
                          "column": "failed", "timespanSeconds": 60, "endpoint": None,
                          "caBundle": None, "managedIdentityClientId": None},
             "threshold": {"min": None, "max": 5.0}},
            {"name": "rps",
             "provider": {"kind": "prometheus",
                          "url": "https://contoso.prometheus.monitor.azure.com",
                          "query": 'sum(rate(http_requests_total{service="${service}"}[1m]))',
                          "auth": "azure", "bearerSecret": None,
                          "managedIdentityClientId": None},
             "threshold": {"min": 1.0, "max": None}}]}
    assert prod["strategy"] == {"kind": "blueGreen", "previewService": "delivery-preview",
                                "activeService": "delivery", "scaleDownDelaySeconds": 300,
                                "prePromotionAnalysis": True, "postPromotionAnalysis": True}


def test_the_snapshot_reads_back_typed_and_writes_back_unchanged() -> None:
    for data in snapshot():
        environment = Environment.from_dict(data)
        assert environment.to_dict() == data
        assert environment.analysis is not None
        assert Analysis.from_dict(data["analysis"]) == environment.analysis
    qa, prod = (Environment.from_dict(data) for data in snapshot())
    assert qa.analysis is not None and prod.analysis is not None
    assert qa.analysis.metrics[3] == Metric(
        "acceptance", JobProvider("myacr.azurecr.io/delivery-tests:1", ("pytest",),
                                  ("--version", "${version}"), 1, timedelta(seconds=30)),
        Threshold(min=1))
    assert qa.analysis.metrics[1].provider == HttpProvider(
        "http://${canary}.delivery:8080/healthz", requests=5,
        headers={"Authorization": "probe-token"})
    assert isinstance(prod.analysis.metrics[0].provider, AppInsightsProvider)
    assert prod.analysis.metrics[1].provider == PrometheusProvider(
        "https://contoso.prometheus.monitor.azure.com",
        'sum(rate(http_requests_total{service="${service}"}[1m]))', auth="azure")
    assert qa.analysis.length == timedelta(minutes=5)
    assert qa.strategy == Canary(10, (CanaryStep(weight=10),
                                      CanaryStep(pause=timedelta(seconds=30)),
                                      CanaryStep(weight=50)))
    assert prod.strategy == BlueGreen("delivery-preview", "delivery", timedelta(minutes=5),
                                      True, True)


def test_the_model_survives_its_snapshot() -> None:
    for environment in parse_policy(ANALYSIS, F).service("delivery").environments:
        assert Environment.from_dict(environment.to_dict()) == environment


def test_weights_shorthand_and_the_defaults() -> None:
    text = edit(QA_ANALYSIS, """\
          container: app
        analysis:
          measurements: 2
          metrics:
            - name: health
              http: {url: "http://delivery.qa:8080/healthz"}
              threshold: {min: 1}
        strategy:
          canary: {replicas: 4, weights: [25, 50, 75]}
""", ANALYSIS)
    qa = snapshot(text)[0]
    assert qa["analysis"] == {
        "intervalSeconds": 60, "measurements": 2, "durationSeconds": None, "failureLimit": 0,
        "onNoData": "fail", "retries": 2,
        "metrics": [{"name": "health", "provider": {
            "kind": "http", "url": "http://delivery.qa:8080/healthz", "value": "successRate",
            "requests": 1, "expectStatus": 200, "bodyContains": None, "jsonField": None,
            "jsonEquals": None, "headers": {}, "attemptTimeoutSeconds": 5.0},
            "threshold": {"min": 1.0, "max": None}}]}
    assert qa["strategy"] == {"kind": "canary", "replicas": 4,
                              "steps": [{"weight": 25}, {"weight": 50}, {"weight": 75}]}


def test_blue_green_runs_the_analysis_before_the_switch_unless_told_otherwise() -> None:
    text = edit("            postPromotionAnalysis: true\n            scaleDownDelay: 5m\n", "",
                ANALYSIS)
    prod = snapshot(text)[1]
    assert prod["strategy"] == {"kind": "blueGreen", "previewService": "delivery-preview",
                                "activeService": "delivery", "scaleDownDelaySeconds": 30,
                                "prePromotionAnalysis": True, "postPromotionAnalysis": False}
    without = edit(PROD_ANALYSIS, """\
          container: web
        strategy:
          blueGreen: {previewService: delivery-preview, activeService: delivery}
""", ANALYSIS)
    prod = snapshot(without)[1]
    assert "analysis" not in prod
    assert prod["strategy"]["prePromotionAnalysis"] is False


def test_app_insights_takes_a_workspace_an_endpoint_and_a_timespan() -> None:
    text = edit(f"                resourceId: {RESOURCE_ID}\n",
                "                workspaceId: 0B9A7C1E-4D0F-4A53-9A55-3B7A2F6C1D20\n"
                "                endpoint: https://127.0.0.1:8443/v1/\n"
                "                caBundle: .devhost/ca.pem\n"
                "                timespan: 15m\n", ANALYSIS)
    provider = snapshot(text)[1]["analysis"]["metrics"][0]["provider"]
    assert provider["workspaceId"] == "0b9a7c1e-4d0f-4a53-9a55-3b7a2f6c1d20"
    assert provider["resourceId"] is None
    assert (provider["endpoint"], provider["caBundle"], provider["timespanSeconds"]) == (
        "https://127.0.0.1:8443/v1", ".devhost/ca.pem", 900)


def test_prometheus_with_a_bearer_secret() -> None:
    text = edit("                azure: true\n", "                bearerSecret: prom-token\n",
                ANALYSIS)
    provider = snapshot(text)[1]["analysis"]["metrics"][1]["provider"]
    assert (provider["auth"], provider["bearerSecret"]) == ("bearer", "prom-token")


@pytest.mark.parametrize("text", [BASE, RICH])
def test_environments_without_them_keep_their_snapshot(text: str) -> None:
    for environment in parse_policy(text, F).service("delivery").environments:
        assert environment.analysis is None and environment.strategy == ROLLING
        assert "analysis" not in environment.to_dict()
        assert "strategy" not in environment.to_dict()
    written = edit("          container: app\n", "          container: app\n"
                   "        strategy: rolling\n")
    assert snapshot(written) == snapshot(BASE)


@pytest.mark.parametrize("name", ["rich", "base"])
def test_snapshots_recorded_before_read_as_rolling_without_analysis(name: str) -> None:
    for written in RECORDED[name]["policy"]["environments"]:
        environment = Environment.from_dict(written)
        assert environment.analysis is None and environment.strategy == ROLLING
        assert environment.to_dict() == written


@pytest.mark.parametrize(("change", "message"), [
    ({"onNoData": "ignore"}, "analysis.onNoData must be fail or inconclusive"),
    ({"intervalSeconds": None}, "analysis.intervalSeconds is missing or not valid"),
    ({"metrics": [{"name": "x", "provider": {"kind": "graphite"}, "threshold": {}}]},
     "analysis.metrics['x'].provider.kind must be one of http, prometheus, appInsights, job"),
])
def test_a_broken_analysis_snapshot_names_the_field(change: dict[str, Any],
                                                    message: str) -> None:
    qa = snapshot()[0]
    expected = re.escape(f"policy snapshot: environment 'qa'.{message}")
    with pytest.raises(ValueError, match=f"^{expected}"):
        Environment.from_dict({**qa, "analysis": {**qa["analysis"], **change}})


def test_a_broken_strategy_snapshot_names_the_field() -> None:
    qa = snapshot()[0]
    with pytest.raises(ValueError, match=r"environment 'qa'.strategy.steps\[1\] must be"):
        Environment.from_dict({**qa, "strategy": {**qa["strategy"],
                                                  "steps": [{"weight": 10}, {"wait": 3}]}})


def test_ten_replicas_make_ten_percent_steps() -> None:
    weights = (10, 20, 30, 41, 45, 50, 90)  # the table in docs/release-policy.md
    assert [Canary(10, ()).split(weight) for weight in weights] == [
        (1, 9), (2, 8), (3, 7), (4, 6), (5, 5), (5, 5), (9, 1)]
    assert [Canary(4, ()).split(weight) for weight in weights] == [
        (0, 4), (1, 3), (1, 3), (2, 2), (2, 2), (2, 2), (4, 0)]
    assert canary_pods(4, 10) == 0 and canary_pods(33, 3) == 1 and canary_pods(50, 3) == 2


def test_variables_expand_and_unknown_ones_are_named() -> None:
    values = {"service": "delivery", "canary": "delivery-canary"}
    assert expand('up{service="${service}",pod=~"${canary}-.*"}', values) == \
        'up{service="delivery",pod=~"delivery-canary-.*"}'
    assert expand("rate(x[1m]) > $5", values) == "rate(x[1m]) > $5"
    assert variable_problem("${service} ${windowStart} $x") is None
    assert variable_problem("${namespace}") == (
        "unknown variable ${namespace} (variables: ${service}, ${environment}, ${version},"
        " ${digest}, ${stable}, ${canary}, ${windowStart})")
    assert variable_problem("x ${service") == \
        "'${' without a closing '}': every '${' starts a variable"


def _analysis(on_no_data: str, failure_limit: int = 1, measurements: int = 3) -> Analysis:
    metric = Metric("m", HttpProvider("http://x/"), Threshold(min=1))
    return Analysis(timedelta(seconds=5), measurements, (metric,),
                    failure_limit=failure_limit, on_no_data=on_no_data)


@pytest.mark.parametrize(("on_no_data", "outcomes", "verdict"), [
    ("fail", ["passed", "passed"], None),
    ("fail", ["passed", "passed", "passed"], "passed"),
    ("fail", ["failed", "passed", "passed"], "passed"),
    ("fail", ["failed", "failed"], "failed"),
    ("fail", ["noData", "failed"], "failed"),
    ("fail", ["noData", "passed", "noData"], "failed"),
    ("inconclusive", ["noData"], None),
    ("inconclusive", ["noData", "noData"], "inconclusive"),
    ("inconclusive", ["noData", "passed", "noData"], "inconclusive"),
    ("inconclusive", ["failed", "noData"], "inconclusive"),
    ("inconclusive", ["noData", "passed", "passed"], "passed"),
    ("inconclusive", ["noData", "failed", "failed"], "failed"),
    ("inconclusive", ["noData", "noData", "noData"], "inconclusive"),
])
def test_missing_data_never_counts_as_success(on_no_data: str, outcomes: list[Any],
                                              verdict: str | None) -> None:
    assert _analysis(on_no_data).verdict({"m": outcomes}) == verdict


def test_a_metric_not_yet_measured_keeps_the_analysis_running() -> None:
    assert _analysis("fail", 0, 1).verdict({}) is None
    assert _analysis("fail", 0, 1).verdict({"m": ["passed"]}) == "passed"


def test_thresholds_include_their_ends_and_never_admit_nan() -> None:
    assert Threshold(0, 0.05).admits(0.05) and Threshold(min=1).admits(1)
    assert not Threshold(max=0.05).admits(0.051) and not Threshold(min=0).admits(float("nan"))
    assert Threshold(0.95).describe() == "0.95 ≤ x" and Threshold(max=300).describe() == \
        "x ≤ 300"


# (text to replace, its replacement, the line's needle, field under QA/PROD, message)
SCHEMA_CASES = [
    ("              threshold: {max: 0.05}\n",
     "              http: {url: 'http://x/'}\n              threshold: {max: 0.05}\n",
     "            - name: error-rate", f"{QA}.analysis.metrics[0]",
     "needs exactly one provider: http, prometheus, appInsights or job"),
    ("              threshold: {max: 0.05}\n", "", "            - name: error-rate",
     f"{QA}.analysis.metrics[0].threshold", "required field is missing"),
    ("threshold: {max: 0.05}", "threshold: {}", "threshold: {}",
     f"{QA}.analysis.metrics[0].threshold", "needs min or max (or both)"),
    ("threshold: {max: 0.05}", "threshold: {min: 0.9, max: 0.1}", "{min: 0.9, max",
     f"{QA}.analysis.metrics[0].threshold", "min 0.9 is above max 0.1: no value can pass"),
    ("threshold: {max: 0.05}", "threshold: {max: .nan}", "threshold: {max: .nan}",
     f"{QA}.analysis.metrics[0].threshold.max", "must be a finite number"),
    ("                timeout: 30s\n", "                timeout: 30s\n              threshold:"
     " {min: 1}\n", "            - name: acceptance", f"{QA}.analysis.metrics[3]",
     "a job metric passes when the Job succeeds: leave threshold out"),
    ('{pod=~"${canary}-.*"', '{namespace="${namespace}"', "${namespace}",
     f"{QA}.analysis.metrics[0].prometheus.query",
     "unknown variable ${namespace} (variables: ${service}, ${environment}, ${version},"
     " ${digest}, ${stable}, ${canary}, ${windowStart})"),
    ('args: [--version, "${version}"]', 'args: [--version, "${version"]', "args: [--version",
     f"{QA}.analysis.metrics[3].job.args[1]",
     "'${' without a closing '}': every '${' starts a variable"),
    ("http://${canary}.delivery:8080/healthz", "http://${pod}/healthz", "http://${pod}",
     f"{QA}.analysis.metrics[1].http.url", "unknown variable ${pod}"),
    ("          duration: 5m\n", "          duration: 5m\n          measurements: 10\n",
     "        analysis:\n          interval: 30s", f"{QA}.analysis",
     "needs exactly one of duration (bake time) or measurements (a count)"),
    ("          measurements: 3\n", "", "        analysis:\n          metrics:",
     f"{PROD}.analysis", "needs exactly one of duration (bake time) or measurements"),
    ("onNoData: inconclusive", "onNoData: ignore", "onNoData", f"{QA}.analysis.onNoData",
     "must be 'fail' or 'inconclusive', not text 'ignore'"),
    ("          retries: 3\n", "          retries: 11\n", "retries", f"{QA}.analysis.retries",
     "must be less than or equal to 10, not number 11"),
    ("                azure: true\n",
     "                azure: true\n                bearerSecret: prom-token\n",
     "              prometheus:\n                url: https", f"{PROD}.analysis.metrics[1]"
     ".prometheus", "has both bearerSecret and azure: pick one way to authenticate"),
    ("url: https://contoso.prometheus.monitor.azure.com",
     "url: http://contoso.prometheus.monitor.azure.com",
     "              prometheus:\n                url: http://contoso",
     f"{PROD}.analysis.metrics[1].prometheus", "'http://contoso.prometheus.monitor.azure.com'"
     " must be https:// to send a token (plain http only on loopback)"),
    ("url: https://contoso.prometheus.monitor.azure.com",
     "url: https://prometheus.contoso.com", "              prometheus:\n                url: https",
     f"{PROD}.analysis.metrics[1].prometheus", "'https://prometheus.contoso.com' is not an"
     " Azure Monitor workspace (*.prometheus.monitor.azure.com): azure: true sends the app's"
     " Entra token, and only there"),
    ("                column: failed\n", "                column: failed\n"
     "                endpoint: https://logs.contoso.com/v1\n", "              appInsights:",
     f"{PROD}.analysis.metrics[0].appInsights", "endpoint 'https://logs.contoso.com/v1' is not"
     " an Azure Monitor Logs API (api.loganalytics.io, api.loganalytics.us,"
     " api.loganalytics.azure.cn) nor on loopback: the query sends the app's Entra token there"),
    ("                column: failed\n",
     "                column: failed\n                workspaceId: 0b9a7c1e-4d0f-4a53-9a55"
     "-3b7a2f6c1d20\n", "              appInsights:", f"{PROD}.analysis.metrics[0].appInsights",
     "needs exactly one of resourceId (an Application Insights resource) or workspaceId"),
    ("resourceId: /subscriptions/5d2c4b8e-9f3a-4e1b-8c7d-2a6f0e9b3c41/resourceGroups/rg/",
     "resourceId: /subscriptions/x/resourceGroups/rg/", "resourceId:",
     f"{PROD}.analysis.metrics[0].appInsights.resourceId",
     "'/subscriptions/x/resourceGroups/rg/providers/microsoft.insights/components/delivery'"
     " is not an Azure resource id (such as /subscriptions/<id>/resourceGroups/<group>/"),
    ("value: latencyMs", "value: latency", "value: latency",
     f"{QA}.analysis.metrics[2].http.value",
     "must be 'successRate' or 'latencyMs', not text 'latency'"),
    ("                backoffLimit: 1\n", "                backoffLimit: 1\n"
     "                env: {A: b}\n", "env: {A: b}", f"{QA}.analysis.metrics[3].job.env",
     "unknown field (expected one of: image, command, args, backoffLimit, timeout)"),
    ("              threshold: {max: 5}\n", "              thresholdRange: {max: 5}\n",
     "thresholdRange", f"{PROD}.analysis.metrics[0].thresholdRange",
     "unknown field (did you mean 'threshold'? expected one of:"),
    (PROD_ANALYSIS, "          container: web\n        analysis: null\n", "analysis: null",
     f"{PROD}.analysis", "must not be null"),
    ("            activeService: delivery\n", "", "          blueGreen:",
     f"{PROD}.strategy.blueGreen.activeService", "required field is missing"),
    ("previewService: delivery-preview", "previewService: Delivery_Preview", "previewService",
     f"{PROD}.strategy.blueGreen.previewService", "'Delivery_Preview' is not a Kubernetes name"),
    ("          canary:\n", "          blueGreen: {previewService: a, activeService: b}\n"
     "          canary:\n", "        strategy:\n          blueGreen: {previewService: a",
     f"{QA}.strategy",
     "needs exactly one of blueGreen or canary (or write strategy: rolling)"),
    ("        strategy:\n          canary:\n            replicas: 10\n            steps: [{weight:"
     " 10}, {pause: 30s}, {weight: 50}]\n", "        strategy: recreate\n",
     "strategy: recreate", f"{QA}.strategy",
     "must be rolling or a mapping with blueGreen or canary"),
    ("{weight: 50}]", "{weight: 100}]", "{weight: 100}",
     f"{QA}.strategy.canary.steps[2].weight", "must be less than 100, not number 100"),
    ("steps: [{weight: 10},", "steps: [{weight: 0},", "{weight: 0}",
     f"{QA}.strategy.canary.steps[0].weight", "must be greater than 0, not number 0"),
    ("{pause: 30s}", "{pause: 30s, weight: 20}", "{pause: 30s, weight",
     f"{QA}.strategy.canary.steps[1]", "a step is {weight: <1-99>} or {pause: <duration>}"),
    ("            replicas: 10\n", "            replicas: 10\n            weights: [10]\n",
     "          canary:", f"{QA}.strategy.canary", "needs exactly one of steps or weights"),
    ("            replicas: 10\n", "            replicas: 1\n", "replicas: 1",
     f"{QA}.strategy.canary.replicas", "must be greater than or equal to 2, not number 1"),
]


@pytest.mark.parametrize(("old", "new", "at", "field", "message"), SCHEMA_CASES)
def test_every_bad_field_is_named_with_its_line(old: str, new: str, at: str, field: str,
                                                message: str) -> None:
    text = edit(old, new, ANALYSIS)
    (found,) = problems(text)
    assert found.startswith(f"{F}:{line(text, at)}: {field}: {message}"), found


RULE_CASES = [
    ("          duration: 5m\n", "          duration: 20s\n", "duration: 20s",
     f"{QA}.analysis.duration",
     "duration 20s is shorter than interval 30s: not one measurement fits"),
    ("          interval: 30s\n          duration: 5m\n",
     "          interval: 1s\n          duration: 1h\n", "duration: 1h",
     f"{QA}.analysis.duration", "duration 1h at interval 1s makes 3600 measurements, more than"
     " 1000: lengthen the interval"),
    ("          failureLimit: 1\n", "          failureLimit: 10\n", "failureLimit",
     f"{QA}.analysis.failureLimit",
     "failureLimit 10 tolerates all 10 measurement(s): the analysis could never fail"),
    ("            - name: latency\n", "            - name: health\n",
     "            - name: health\n              http: {url: \"http://delivery.qa",
     f"{QA}.analysis.metrics[2].name", "duplicate metric name 'health' in this analysis"),
    ("threshold: {min: 0.95}", "threshold: {min: 95}", "threshold: {min: 95}",
     f"{QA}.analysis.metrics[1].threshold.min",
     "successRate is a share from 0 to 1: min 95 can never be met (for 95 % write 0.95)"),
    ("threshold: {min: 0.95}", "threshold: {max: -0.5}", "threshold: {max: -0.5}",
     f"{QA}.analysis.metrics[1].threshold.max",
     "successRate is a share from 0 to 1: max -0.5 can never be met"),
    ("threshold: {min: 0, max: 300}", "threshold: {max: 2000}", "threshold: {max: 2000}",
     f"{QA}.analysis.metrics[2].threshold.max", "max 2000 ms is not below the attempt timeout"
     " (2 s): a request that never answers counts as 2000 ms and would pass"),
    ("threshold: {min: 0, max: 300}", "threshold: {max: 0}", "threshold: {max: 0}",
     f"{QA}.analysis.metrics[2].threshold.max", "latencyMs is above 0: max 0 can never be met"),
    ("                requests: 5\n", "                requests: 7\n", "requests: 7",
     f"{QA}.analysis.metrics[1].http.requests", "7 request(s) of up to 5 s each may take"
     " longer than the interval (30 s): one measurement must fit in an interval"),
    ("                timeout: 30s\n", "                timeout: 2m\n", "timeout: 2m",
     f"{QA}.analysis.metrics[3].job.timeout", "the Job's timeout 2m is longer than the"
     " interval 30s: one measurement must fit in an interval"),
    ("                timeout: 30s\n", "", "              job:",
     f"{QA}.analysis.metrics[3].job", "the Job's timeout 5m is longer than the interval 30s"),
    ("steps: [{weight: 10}, {pause: 30s}, {weight: 50}]",
     "steps: [{weight: 10}, {pause: 30s}, {weight: 10}]", "{weight: 10}]",
     f"{QA}.strategy.canary.steps[2].weight",
     "weight 10 is not above the weight before it, 10: weights must increase"),
    ("            steps: [{weight: 10}, {pause: 30s}, {weight: 50}]\n",
     "            steps:\n              - weight: 30\n              - weight: 20\n",
     "weight: 20", f"{QA}.strategy.canary.steps[1].weight",
     "weight 20 is not above the weight before it, 30 (line {line}): weights must increase"),
    ("steps: [{weight: 10}, {pause: 30s}, {weight: 50}]", "weights: [4, 50]", "weights",
     f"{QA}.strategy.canary.weights[0]", "weight 4 of 10 replicas is 0 canary pods: the canary"
     " would get no traffic (raise the weight or replicas)"),
    ("steps: [{weight: 10}, {pause: 30s}, {weight: 50}]", "weights: [50, 96]", "weights",
     f"{QA}.strategy.canary.weights[1]", "weight 96 of 10 replicas is 10 canary pods and no"
     " stable pod (lower the weight or raise replicas)"),
    ("steps: [{weight: 10}, {pause: 30s}, {weight: 50}]", "weights: [10, 12]", "weights",
     f"{QA}.strategy.canary.weights[1]", "weight 12 of 10 replicas is 1 canary pod(s), as"
     " weight 10 before it: the step would change nothing (raise replicas or drop a step)"),
    ("steps: [{weight: 10}, {pause: 30s}, {weight: 50}]", "steps: [{pause: 30s}]",
     "steps: [{pause", f"{QA}.strategy.canary.steps", "needs at least one {weight} step"),
    ("          deployment: delivery\n          container: app\n",
     "          helm: {chart: charts/delivery}\n", "        strategy:\n          canary",
     f"{QA}.strategy", "a Helm target takes strategy rolling only, not canary: Helm owns the"
     " chart's Deployments and Services, so the product does not patch them (analysis still"
     " applies)"),
    ("activeService: delivery\n", "activeService: delivery-preview\n",
     "previewService: delivery-preview", f"{PROD}.strategy.blueGreen.previewService",
     "previewService and activeService are both 'delivery-preview': the preview needs a"
     " Service of its own"),
    ("            postPromotionAnalysis: true\n            scaleDownDelay: 5m\n",
     "            prePromotionAnalysis: false\n", "          blueGreen:",
     f"{PROD}.strategy.blueGreen", "the environment's analysis would never run: set"
     " prePromotionAnalysis or postPromotionAnalysis"),
    ("            scaleDownDelay: 5m\n", "            scaleDownDelay: 2m\n", "scaleDownDelay",
     f"{PROD}.strategy.blueGreen.scaleDownDelay", "scaleDownDelay 2m is shorter than the"
     " post-promotion analysis (3 × 1m = 3m): the previous version would be scaled down"
     " before a failed analysis could switch back to it"),
    ("            scaleDownDelay: 5m\n", "", "          blueGreen:",
     f"{PROD}.strategy.blueGreen", "scaleDownDelay 30s is shorter than the post-promotion"
     " analysis (3 × 1m = 3m)"),
]


@pytest.mark.parametrize(("old", "new", "at", "field", "message"), RULE_CASES)
def test_every_rule_is_named_with_its_line(old: str, new: str, at: str, field: str,
                                           message: str) -> None:
    text = edit(old, new, ANALYSIS)
    (found,) = problems(text)
    first_weight = line(text, "weight: 30") if "{line}" in message else 0
    expected = f"{F}:{line(text, at)}: {field}: {message.replace('{line}', str(first_weight))}"
    assert found.startswith(expected), found


def test_an_analysis_flag_without_an_analysis_is_named() -> None:
    text = edit(PROD_ANALYSIS, """\
          container: web
        strategy:
          blueGreen:
            previewService: delivery-preview
            activeService: delivery
            postPromotionAnalysis: true
""", ANALYSIS)
    assert problems(text) == [f"{F}:{line(text, 'postPromotionAnalysis')}:"
                              f" {PROD}.strategy.blueGreen.postPromotionAnalysis: is true but"
                              " this environment has no analysis"]


def test_a_helm_target_takes_an_analysis_and_rolling() -> None:
    text = edit(PROD_ANALYSIS, "          container: web\n" + PROD_ANALYSIS.split(
        "        strategy:")[0].split("          container: web\n")[1] +
        "        strategy: rolling\n", ANALYSIS)
    text = edit("          deployment: delivery\n          container: web\n",
                "          helm: {chart: charts/delivery}\n", text)
    prod = snapshot(text)[1]
    assert prod["target"]["deploy"]["kind"] == "helm"
    assert prod["analysis"]["measurements"] == 3 and "strategy" not in prod


def test_the_examples_in_the_reference_load_and_their_snapshots_read_back() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "release-policy.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]
    (analysis,) = [block for block in blocks if block.startswith("        analysis:\n")]
    (strategy,) = [block for block in blocks if block.startswith("        strategy:\n")]
    policy = edit("          container: app\n", "          container: app\n" + analysis +
                  strategy.split("   #", 1)[0] + "\n")
    qa = parse_policy(policy, "docs example").service("delivery").environments[0]
    assert qa.analysis is not None and qa.analysis.measurements == 10
    assert [metric.name for metric in qa.analysis.metrics] == [
        "error-rate", "health", "failed-requests", "acceptance"]
    assert isinstance(qa.strategy, Canary) and qa.strategy.weights == (10, 30, 60)
    written = qa.to_dict()
    assert [metric["provider"]["kind"] for metric in written["analysis"]["metrics"]] == [
        "prometheus", "http", "appInsights", "job"]
    block = text.split('```json\n"analysis": ', 1)[1].split("\n```", 1)[0]
    documented = json.loads('{"analysis": ' + block + "}")
    analysis_written = Analysis.from_dict(documented["analysis"])
    assert analysis_written is not None
    assert analysis_written.to_dict() == documented["analysis"]
    assert documented["analysis"]["metrics"][1] == written["analysis"]["metrics"][1]
    assert documented["strategy"] == written["strategy"]
    blue_green = json.loads(text.split('```json\n"strategy": ', 1)[1].split("\n```", 1)[0])
    assert BlueGreen.from_dict(blue_green, "strategy").to_dict() == blue_green
