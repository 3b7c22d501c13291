"""One round of an environment's analysis: each metric's provider asked once, its number
compared with the metric's threshold, as one `Measurement` each (shared/deploy/evidence.py).

A `job` metric runs a Kubernetes Job in the target's namespace (shared/analysis/jobs.py): the
`Providers` of a request that names the target's cluster (`JobSite`).
A measurement's `details["outcome"]` is what `Analysis.verdict` counts: `passed`, `failed`,
or `noData` (no number, or a provider that stayed unreachable after `retries`: never a
success). A query the provider rejects is `failed` and `fatal`: it cannot pass next time
either, so the analysis fails at once. Variables are filled in here, secrets read here and
nowhere else; no secret is returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from shared.cluster.verification import HttpCheck, evaluate
from shared.deploy.evidence import Evidence, Measurement, Verdict
from shared.policy.analysis import (
    LATENCY_MS,
    Analysis,
    AppInsightsProvider,
    HttpProvider,
    JobProvider,
    Metric,
    Outcome,
    PrometheusProvider,
    expand,
)
from shared.text import one_line

if TYPE_CHECKING:
    from shared.analysis.jobs import JobSite

ANALYSIS = "analysis"  # the Evidence kind of a measurement round
REASON_LIMIT = 300


@dataclass(frozen=True)
class Reading:
    """What a provider gave: a number, or none (`why` says why: no data, or an error)."""

    value: float | None
    why: str = ""
    fatal: bool = False  # the provider rejected the query: asking again cannot help
    unreachable: bool = False  # worth another try


class Providers:
    """Reads one metric; secrets come through `secret(name)`, never from the request; `jobs`
    is where `job` metrics run (None: the request named no cluster)."""

    def __init__(self, secret: Callable[[str], str], *,
                 session: requests.Session | None = None, jobs: JobSite | None = None) -> None:
        self._secret = secret
        self._session = session or requests.Session()
        self._jobs = jobs

    def read(self, metric: Metric, variables: Mapping[str, str]) -> Reading:
        provider = metric.provider
        if isinstance(provider, HttpProvider):
            return self._http(provider, variables)
        if isinstance(provider, AppInsightsProvider):
            return _app_insights(provider, variables)
        if isinstance(provider, PrometheusProvider):
            return _prometheus(provider, variables, self._secret)
        if isinstance(provider, JobProvider):
            return self._job(metric.name, provider, variables)
        return Reading(None, f"{provider.KIND} metrics are not measured by this version",
                       fatal=True)

    def _job(self, name: str, provider: JobProvider, variables: Mapping[str, str]) -> Reading:
        """1 when the metric's Job succeeds, 0 when it fails, no number when it did not
        finish in time."""
        if self._jobs is None:
            return Reading(None, "job metrics need the target's cluster: the request names"
                                 " none", fatal=True)
        from shared.analysis.jobs import measure_job

        got = measure_job(provider, name, variables, self._jobs)
        return Reading(got.value, got.why, fatal=got.fatal, unreachable=got.unreachable)

    def _http(self, provider: HttpProvider, variables: Mapping[str, str]) -> Reading:
        """`requests` GETs: the share that passed, or the slowest in ms (no answer: the
        timeout)."""
        check = HttpCheck(name="metric", url=expand(provider.url, variables),
                          expect_status=provider.expect_status,
                          body_contains=provider.body_contains, json_field=provider.json_field,
                          json_equals=provider.json_equals,
                          attempt_timeout=provider.attempt_timeout_seconds)
        headers = {name: self._secret(secret) for name, secret in provider.headers.items()}
        passed, slowest, last = 0, 0.0, ""
        for _ in range(provider.requests):
            started = time.monotonic()
            try:
                response = self._session.get(check.url, headers=headers, allow_redirects=False,
                                             timeout=check.attempt_timeout)
                ok, last = evaluate(check, response.status_code, response.text)
                elapsed = (time.monotonic() - started) * 1000
            except requests.RequestException as failed:
                ok, last = False, f"request failed: {type(failed).__name__}"
                elapsed = check.attempt_timeout * 1000
            passed += ok
            slowest = max(slowest, elapsed)
        if provider.value == LATENCY_MS:
            return Reading(round(slowest, 1), f"slowest of {provider.requests} requests")
        return Reading(passed / provider.requests,
                       f"{passed} of {provider.requests} requests passed ({last})")


def measure(analysis: Analysis, variables: Mapping[str, str], providers: Providers, *,
            sleep: Callable[[float], None] = time.sleep) -> Evidence:
    """One round: every metric once (an unreachable provider `analysis.retries` more times)."""
    return Evidence.of(ANALYSIS, tuple(
        _measurement(metric, _read(metric, variables, providers, analysis.retries, sleep))
        for metric in analysis.metrics))


def outcome_of(measurement: Measurement) -> Outcome:
    """What `Analysis.verdict` counts for a measurement."""
    outcome = measurement.details.get("outcome")
    return outcome if outcome in ("passed", "failed", "noData") else "noData"


def fatal(evidence: Evidence) -> bool:
    """Whether a measurement of the round can never pass (a rejected query)."""
    return any(m.details.get("fatal") for m in evidence.measurements)


def _read(metric: Metric, variables: Mapping[str, str], providers: Providers, retries: int,
          sleep: Callable[[float], None]) -> Reading:
    for attempt in range(retries + 1):
        reading = providers.read(metric, variables)
        if not reading.unreachable or attempt == retries:
            return reading
        sleep(min(2.0 ** attempt, 5.0))
    raise AssertionError("unreachable")


def _measurement(metric: Metric, reading: Reading) -> Measurement:
    wanted = metric.threshold.describe()
    if reading.value is None or math.isnan(reading.value):
        outcome: Outcome = "failed" if reading.fatal else "noData"
        verdict = Verdict.FAILED if reading.fatal else Verdict.INCONCLUSIVE
        summary = one_line(reading.why or "no data", REASON_LIMIT)
        return Measurement(metric.name, verdict, summary, None,
                           {"outcome": outcome, "fatal": reading.fatal})
    value = reading.value
    admitted = metric.threshold.admits(value)
    summary = one_line(f"{value:g} ({'within' if admitted else 'outside'} {wanted}):"
                       f" {reading.why}".rstrip(": "), REASON_LIMIT)
    return Measurement(metric.name, Verdict.PASSED if admitted else Verdict.FAILED, summary,
                       value, {"outcome": "passed" if admitted else "failed", "fatal": False})


def _app_insights(provider: AppInsightsProvider, variables: Mapping[str, str]) -> Reading:
    from shared.analysis.appinsights import (
        AppInsightsError,
        AppInsightsQuery,
        Failure,
        LogsConnection,
    )

    try:
        got = AppInsightsQuery(
            kql=expand(provider.query, variables), column=provider.column,
            timespan=provider.timespan, resource_id=provider.resource_id,
            workspace_id=provider.workspace_id, endpoint=provider.endpoint,
            managed_identity_client_id=provider.managed_identity_client_id,
            connection=LogsConnection(ca_bundle=provider.ca_bundle)).run()
    except AppInsightsError as failed:
        return Reading(None, failed.reason, fatal=failed.failure is not Failure.UNREACHABLE,
                       unreachable=failed.failure is Failure.UNREACHABLE)
    except ValueError as bad:  # a query that cannot be sent
        return Reading(None, str(bad), fatal=True)
    return Reading(got.value, got.summary)


def _prometheus(provider: PrometheusProvider, variables: Mapping[str, str],
                secret: Callable[[str], str]) -> Reading:
    from shared.analysis.prometheus import (
        Auth,
        BearerToken,
        EntraIdentity,
        NoAuth,
        NoData,
        PrometheusQuery,
        ProviderError,
    )

    auth: Auth = NoAuth()
    if provider.auth == "bearer" and provider.bearer_secret:
        auth = BearerToken(secret(provider.bearer_secret))
    elif provider.auth == "azure":
        auth = EntraIdentity(managed_identity_client_id=provider.managed_identity_client_id)
    try:
        got = PrometheusQuery(provider.url, expand(provider.query, variables), auth).run()
    except ProviderError as failed:
        return Reading(None, str(failed), fatal=not failed.retryable,
                       unreachable=failed.retryable)
    except ValueError as bad:  # a query that cannot be sent
        return Reading(None, str(bad), fatal=True)
    if isinstance(got, NoData):
        return Reading(None, f"no data: {got.reason}")
    return Reading(got.value, "PromQL")
