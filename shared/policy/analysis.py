"""An environment's analysis: metrics measured over time, typed, with their snapshot form.

`Analysis.from_dict` reads the `analysis` dict a snapshot carries and `to_dict` writes it
back unchanged; `expand` fills a query's `${variables}`; `Analysis.verdict` says what the
measurements so far decide. Pure: the runtime that measures lives elsewhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

DEFAULT_INTERVAL = timedelta(minutes=1)
DEFAULT_RETRIES = 2
DEFAULT_HTTP_TIMEOUT_SECONDS = 5.0
DEFAULT_JOB_TIMEOUT = timedelta(minutes=5)
MAX_MEASUREMENTS = 1000
VARIABLES = ("service", "environment", "version", "digest", "stable", "canary", "windowStart")
SUCCESS_RATE, LATENCY_MS = "successRate", "latencyMs"
HTTP_VALUES = (SUCCESS_RATE, LATENCY_MS)
ON_NO_DATA = ("fail", "inconclusive")
# What one metric's measurement came to; the runtime records one per metric and interval.
Outcome = Literal["passed", "failed", "noData"]
Verdict = Literal["passed", "failed", "inconclusive"]

_VARIABLE = re.compile(r"\$\{([^{}]*)\}")


def variables_in(text: str) -> list[str]:
    """The names of the `${…}` variables `text` uses, in order (unknown ones included)."""
    return _VARIABLE.findall(text)


def variable_problem(text: str) -> str | None:
    """Why `text` is not a valid template (an unknown or unclosed `${…}`), or None."""
    unknown = [name for name in variables_in(text) if name not in VARIABLES]
    if unknown:
        return (f"unknown variable ${{{unknown[0]}}} (variables: "
                f"{', '.join('${' + name + '}' for name in VARIABLES)})")
    if "${" in _VARIABLE.sub("", text):
        return "'${' without a closing '}': every '${' starts a variable"
    return None


def expand(text: str, values: Mapping[str, str]) -> str:
    """`text` with each `${name}` replaced by `values[name]`; KeyError for a missing value."""
    return _VARIABLE.sub(lambda match: values[match[1]], text)


def _seconds(duration: timedelta | None) -> int | None:
    return None if duration is None else int(duration.total_seconds())


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data.get(key) if isinstance(data, Mapping) else None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        raise ValueError(f"policy snapshot: {where}.{key} is missing or not valid")
    return value


def _optional(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...],
              where: str) -> Any:
    return None if data.get(key) is None else _get(data, key, kind, where)


def _texts(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _get(data, key, list, where)
    if not all(isinstance(value, str) for value in values):
        raise ValueError(f"policy snapshot: {where}.{key} must be a list of text")
    return tuple(values)


@dataclass(frozen=True)
class Threshold:
    """The range a measured number must lie in (both ends included); None: unbounded."""

    min: float | None = None
    max: float | None = None

    def admits(self, value: float) -> bool:
        """Whether `value` passes; NaN never does."""
        if math.isnan(value):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        """`0.95 ≤ x`, `x ≤ 300`, `0 ≤ x ≤ 0.05`: for evidence summaries."""
        low = f"{self.min:g} ≤ " if self.min is not None else ""
        high = f" ≤ {self.max:g}" if self.max is not None else ""
        return f"{low}x{high}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Threshold:
        number = (int, float)
        return cls(_optional(data, "min", number, where), _optional(data, "max", number, where))

    def to_dict(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max}


@dataclass(frozen=True)
class HttpProvider:
    """Requests to a URL per measurement: the share that passed, or the slowest in ms."""

    url: str
    value: str = SUCCESS_RATE
    requests: int = 1
    expect_status: int = 200
    body_contains: str | None = None
    json_field: str | None = None
    json_equals: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    """Header name → secret name (never a value)."""
    attempt_timeout_seconds: float = DEFAULT_HTTP_TIMEOUT_SECONDS

    KIND = "http"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> HttpProvider:
        headers = _get(data, "headers", Mapping, where)
        if not all(isinstance(name, str) for name in headers.values()):
            raise ValueError(f"policy snapshot: {where}.headers must map headers to secret names")
        return cls(url=_get(data, "url", str, where), value=_get(data, "value", str, where),
                   requests=_get(data, "requests", int, where),
                   expect_status=_get(data, "expectStatus", int, where),
                   body_contains=_optional(data, "bodyContains", str, where),
                   json_field=_optional(data, "jsonField", str, where),
                   json_equals=data.get("jsonEquals"), headers=dict(headers),
                   attempt_timeout_seconds=_get(data, "attemptTimeoutSeconds", (int, float),
                                                where))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "url": self.url, "value": self.value,
                "requests": self.requests, "expectStatus": self.expect_status,
                "bodyContains": self.body_contains, "jsonField": self.json_field,
                "jsonEquals": self.json_equals, "headers": dict(self.headers),
                "attemptTimeoutSeconds": self.attempt_timeout_seconds}


@dataclass(frozen=True)
class PrometheusProvider:
    """A PromQL instant query against `<url>/api/v1/query`; `auth` is none, bearer or azure."""

    url: str
    query: str
    auth: str = "none"
    bearer_secret: str | None = None
    managed_identity_client_id: str | None = None

    KIND = "prometheus"
    AZURE_SCOPE = "https://prometheus.monitor.azure.com/.default"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> PrometheusProvider:
        auth = _get(data, "auth", str, where)
        if auth not in ("none", "bearer", "azure"):
            raise ValueError(f"policy snapshot: {where}.auth must be none, bearer or azure")
        provider = cls(url=_get(data, "url", str, where), query=_get(data, "query", str, where),
                       auth=auth, bearer_secret=_optional(data, "bearerSecret", str, where),
                       managed_identity_client_id=_optional(data, "managedIdentityClientId",
                                                            str, where))
        if (auth == "bearer") != (provider.bearer_secret is not None):
            raise ValueError(f"policy snapshot: {where}.bearerSecret goes with auth bearer only")
        return provider

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "url": self.url, "query": self.query, "auth": self.auth,
                "bearerSecret": self.bearer_secret,
                "managedIdentityClientId": self.managed_identity_client_id}


@dataclass(frozen=True)
class AppInsightsProvider:
    """A KQL query (azure-monitor-query `LogsQueryClient`); the number is `column` of row 1."""

    query: str
    column: str
    timespan: timedelta
    resource_id: str | None = None
    workspace_id: str | None = None
    endpoint: str | None = None
    """The Logs query API's base URL; None: Azure's public endpoint."""
    ca_bundle: str | None = None
    managed_identity_client_id: str | None = None

    KIND = "appInsights"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> AppInsightsProvider:
        provider = cls(query=_get(data, "query", str, where),
                       column=_get(data, "column", str, where),
                       timespan=timedelta(seconds=_get(data, "timespanSeconds", int, where)),
                       resource_id=_optional(data, "resourceId", str, where),
                       workspace_id=_optional(data, "workspaceId", str, where),
                       endpoint=_optional(data, "endpoint", str, where),
                       ca_bundle=_optional(data, "caBundle", str, where),
                       managed_identity_client_id=_optional(data, "managedIdentityClientId",
                                                            str, where))
        if (provider.resource_id is None) == (provider.workspace_id is None):
            raise ValueError(f"policy snapshot: {where} needs exactly one of resourceId and"
                             " workspaceId")
        return provider

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "resourceId": self.resource_id,
                "workspaceId": self.workspace_id, "query": self.query, "column": self.column,
                "timespanSeconds": _seconds(self.timespan), "endpoint": self.endpoint,
                "caBundle": self.ca_bundle,
                "managedIdentityClientId": self.managed_identity_client_id}


@dataclass(frozen=True)
class JobProvider:
    """A Kubernetes Job in the target's namespace: 1 when it succeeds, 0 when it fails."""

    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    backoff_limit: int = 0
    timeout: timedelta = DEFAULT_JOB_TIMEOUT

    KIND = "job"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> JobProvider:
        return cls(image=_get(data, "image", str, where), command=_texts(data, "command", where),
                   args=_texts(data, "args", where),
                   backoff_limit=_get(data, "backoffLimit", int, where),
                   timeout=timedelta(seconds=_get(data, "timeoutSeconds", int, where)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, "image": self.image, "command": list(self.command),
                "args": list(self.args), "backoffLimit": self.backoff_limit,
                "timeoutSeconds": _seconds(self.timeout)}


Provider = HttpProvider | PrometheusProvider | AppInsightsProvider | JobProvider
PROVIDERS: dict[str, type[Provider]] = {kind.KIND: kind for kind in (
    HttpProvider, PrometheusProvider, AppInsightsProvider, JobProvider)}
JOB_THRESHOLD = Threshold(min=1.0)


@dataclass(frozen=True)
class Metric:
    """One number per measurement, from one provider, compared with `threshold`."""

    name: str
    provider: Provider
    threshold: Threshold

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Metric:
        name = _get(data, "name", str, where)
        here = f"{where}[{name!r}]"
        provider = _get(data, "provider", Mapping, here)
        kind = PROVIDERS.get(str(provider.get("kind")))
        if kind is None:
            raise ValueError(f"policy snapshot: {here}.provider.kind must be one of"
                             f" {', '.join(PROVIDERS)}")
        return cls(name, kind.from_dict(provider, f"{here}.provider"),
                   Threshold.from_dict(_get(data, "threshold", Mapping, here),
                                       f"{here}.threshold"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider.to_dict(),
                "threshold": self.threshold.to_dict()}


@dataclass(frozen=True)
class Analysis:
    """`measurements` rounds, one every `interval`; each metric measured once per round.

    `duration` is the bake time the policy wrote (None when it gave `measurements`)."""

    interval: timedelta
    measurements: int
    metrics: tuple[Metric, ...]
    duration: timedelta | None = None
    failure_limit: int = 0
    on_no_data: str = "fail"
    retries: int = DEFAULT_RETRIES
    initial_delay: timedelta | None = None
    """Time after the rollout before the first interval starts: new pods need to be seen by
    the metric source (Prometheus scrapes a new target after a few seconds) before a
    measurement can have data."""

    @property
    def length(self) -> timedelta:
        """How long the analysis takes when it runs to its end."""
        return self.interval * self.measurements

    def verdict(self, outcomes: Mapping[str, Sequence[Outcome]]) -> Verdict | None:
        """What the outcomes so far (per metric name, in order) decide; None: keep measuring.

        A metric fails the analysis with more than `failureLimit` failed measurements (empty
        ones count as failed with `onNoData: fail`). With `onNoData: inconclusive` a metric
        whose failed plus empty measurements exceed the limit ends it inconclusive: it can
        no longer pass."""
        inconclusive = False
        for metric in self.metrics:
            taken = outcomes.get(metric.name, ())
            failed, empty = taken.count("failed"), taken.count("noData")
            if self.on_no_data == "fail":
                failed, empty = failed + empty, 0
            if failed > self.failure_limit:
                return "failed"
            inconclusive = inconclusive or failed + empty > self.failure_limit
        if inconclusive:
            return "inconclusive"
        done = all(len(outcomes.get(metric.name, ())) >= self.measurements
                   for metric in self.metrics)
        return "passed" if done else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None,
                  where: str = "analysis") -> Analysis | None:
        """The analysis of a snapshot (`to_dict`'s output); None when the snapshot has none."""
        if data is None:
            return None
        on_no_data = _get(data, "onNoData", str, where)
        if on_no_data not in ON_NO_DATA:
            raise ValueError(f"policy snapshot: {where}.onNoData must be fail or inconclusive")
        duration = _optional(data, "durationSeconds", int, where)
        delay = _optional(data, "initialDelaySeconds", int, where)
        return cls(interval=timedelta(seconds=_get(data, "intervalSeconds", int, where)),
                   measurements=_get(data, "measurements", int, where),
                   metrics=tuple(Metric.from_dict(metric, f"{where}.metrics")
                                 for metric in _get(data, "metrics", list, where)),
                   duration=timedelta(seconds=duration) if duration is not None else None,
                   failure_limit=_get(data, "failureLimit", int, where),
                   on_no_data=on_no_data, retries=_get(data, "retries", int, where),
                   initial_delay=timedelta(seconds=delay) if delay else None)

    def to_dict(self) -> dict[str, Any]:
        return {"intervalSeconds": _seconds(self.interval), "measurements": self.measurements,
                "durationSeconds": _seconds(self.duration), "failureLimit": self.failure_limit,
                "onNoData": self.on_no_data, "retries": self.retries,
                "metrics": [metric.to_dict() for metric in self.metrics],
                **({"initialDelaySeconds": _seconds(self.initial_delay)}
                   if self.initial_delay else {})}
