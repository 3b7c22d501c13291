"""The policy file's format as pydantic models: field names, types and per-field rules.

Every model forbids unknown fields and coerces nothing (strict mode): YAML `1.0` is not the
string "1.0". Fields of `defaults` and the optional parts of a service are None when not
written, so `model.py` can tell "not set" (inherit) from a value. Rules that span fields
of different places (references, uniqueness) live in `semantics.py`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails

from shared.registry.errors import InvalidReference
from shared.registry.references import check_repository
from shared.secrets.names import (
    InvalidSecretName,
    check_environment_name,
    check_secret_name,
    normalize_vault_url,
)

from . import analysis, helm
from .durations import parse_duration
from .strategy import DEFAULT_SCALE_DOWN_DELAY
from .versions import parse_range

_NAME = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESOURCE_ID = re.compile(r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[^/]+/providers/"
                          r"[A-Za-z0-9.]+/[^/]+/[^/]+(?:/[^/]+/[^/]+)*")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Where an Entra token of the app's identity may go (besides loopback, for local fakes).
AZURE_PROMETHEUS_SUFFIXES = (".prometheus.monitor.azure.com", ".prometheus.monitor.azure.us",
                             ".prometheus.monitor.azure.cn")
AZURE_LOGS_HOSTS = ("api.loganalytics.io", "api.loganalytics.us", "api.loganalytics.azure.cn")


def _rule(check: Callable[[Any], Any]) -> AfterValidator:
    return AfterValidator(check)


def _name(value: str) -> str:
    if not _NAME.fullmatch(value) or len(value) > 63:
        raise ValueError(f"invalid name {value!r}: up to 63 letters and digits, groups joined by"
                         " '-', '_' or '.'")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _secret_name(value: str) -> str:
    try:
        return check_secret_name(value, "")
    except InvalidSecretName as bad:
        raise ValueError(f"invalid secret name: {bad.reason}") from None


def _environment_name(value: str) -> str:
    try:
        return check_environment_name(value, "")
    except InvalidSecretName as bad:
        raise ValueError(bad.reason) from None


def _repository(value: str) -> str:
    try:
        return check_repository(value)
    except InvalidReference as bad:
        raise ValueError(str(bad)) from None


def _dns_label(value: str) -> str:
    if len(value) > 63 or not re.fullmatch(_DNS_LABEL, value):
        raise ValueError(f"{value!r} is not a Kubernetes name (up to 63 of a-z, 0-9 and -,"
                         " starting and ending with a letter or digit)")
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a Kubernetes object name (lowercase DNS subdomain)")
    return value


def _guid(value: str) -> str:
    if not _GUID.fullmatch(value):
        raise ValueError(f"{value!r} is not a client id (a GUID such as"
                         " 00000000-0000-0000-0000-000000000000)")
    return value.lower()


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} must be an http:// or https:// URL")
    return value


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{value!r} must be an https:// URL")
    return value.rstrip("/")


def _registry_url(value: str) -> str:
    """The normalisation of `RegistryEndpoint.from_dict`: scheme://host[:port]."""
    url = value if value.startswith(("https://", "http://")) else "https://" + value
    parts = urlsplit(url)
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{value!r} must be a registry host, e.g. myacr.azurecr.io or"
                         " https://127.0.0.1:5000")
    return f"{parts.scheme}://{parts.netloc}"


def _vault_url(value: str) -> str:
    try:
        return normalize_vault_url(value, "")
    except ValueError as bad:
        raise ValueError(str(bad).removeprefix(": ")) from None


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as bad:
        raise ValueError(f"invalid regex '{value}': {bad}") from None
    return value


def _range(value: str) -> str:
    try:
        return str(parse_range(value))
    except ValueError as bad:
        raise ValueError(f"invalid semver range: {bad}") from None


def _namespace(value: str) -> str:
    stripped = value.strip("/")
    try:
        check_repository(stripped)
    except InvalidReference:
        raise ValueError(f"invalid repository namespace {value!r}: lowercase path such as"
                         " 'prod/'") from None
    return stripped + "/"


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        raise ValueError("must be the base64 PEM of the cluster CA (certificate-authority-data)"
                         ) from None
    return value


def _header(value: str) -> str:
    if not _HEADER.fullmatch(value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value


def _app_path(value: str, example: str = "deploy/values-qa.yaml") -> str:
    """A path relative to the app root that stays inside it (`deploy/values-qa.yaml`)."""
    parts = value.split("/")
    if not value or value.startswith("/") or "\\" in value or ":" in value or \
            any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{value!r} must be a path relative to the app root, inside it (such as"
                         f" {example}): no leading /, no . or .. parts, no empty parts")
    return value


def _chart(value: str) -> str:
    if not helm.is_oci(value):
        if "://" in value:
            raise ValueError(f"chart {value!r} must be oci://<registry host>/<repository> or a"
                             " chart folder relative to the app root")
        return _app_path(value, "charts/delivery")
    host, repository = helm.split_oci(value)
    if not host or not repository:
        raise ValueError(f"chart {value!r} must be oci://<registry host>/<repository>")
    if "@" in repository or ":" in repository:
        raise ValueError(f"chart {value!r} names a tag or digest: give the repository only"
                         " (version picks the chart version)")
    try:
        check_repository(repository)
    except InvalidReference as bad:
        raise ValueError(f"chart {value!r}: {bad}") from None
    return f"{helm.OCI_SCHEME}{host}/{repository}"


def _chart_version(value: str) -> str:
    if value != helm.IMAGE_VERSION and not helm.SEMVER.fullmatch(value):
        raise ValueError(f"{value!r} must be 'image' (the image's version) or a SemVer 2 version"
                         " such as 1.4.2")
    return value


def _release_name(value: str) -> str:
    from helm_python import HelmInvalidArgError, validate_release_name  # loads Helm's library

    try:
        validate_release_name(value)
    except HelmInvalidArgError:
        raise ValueError(f"{value!r} is not a Helm release name: up to 53 of a-z, 0-9, '-' and"
                         " '.', starting and ending with a letter or digit") from None
    return value


def _value_path(value: str) -> str:
    if len(value) > 253 or not helm.VALUE_PATH.fullmatch(value):
        raise ValueError(f"{value!r} is not a value key: a dotted path of names such as"
                         " image.repository (letters, digits, _ and -, not starting with a"
                         " digit or -)")
    return value


def _json_values(value: dict[str, Any]) -> dict[str, Any]:
    problem = helm.json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _helm_test(value: Any) -> Any:
    """`test: false | true | {timeout: 5m}` as None or a mapping."""
    if value is False:
        return None
    if value is True:
        return {}
    if isinstance(value, dict):
        return value
    raise ValueError("must be true, false or a mapping such as {timeout: 5m}")


def _template(value: str) -> str:
    """Text that may use the analysis variables (`${service}`, …) and no others."""
    problem = analysis.variable_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _http_template(value: str) -> str:
    return _http_url(_template(value))


def _resource_id(value: str) -> str:
    if not _RESOURCE_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not an Azure resource id (such as /subscriptions/<id>/"
                         "resourceGroups/<group>/providers/microsoft.insights/components/<name>)")
    return value


def _strategy(value: Any) -> Any:
    """`strategy: rolling` as None (the default); a mapping as written."""
    if value == "rolling":
        return None
    if isinstance(value, dict):
        return value
    raise ValueError("must be rolling or a mapping with blueGreen or canary")


def _reject_null(cls: type, value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null (leave the field out to use the default)")
    return value


def not_null(*fields: str) -> Any:
    """A validator for optional fields whose absence means "inherit" but null means nothing."""
    return field_validator(*fields, mode="before")(_reject_null)


Name = Annotated[str, _rule(_name)]
Text = Annotated[str, _rule(_not_blank)]
SecretName = Annotated[str, _rule(_secret_name)]
EnvironmentName = Annotated[str, _rule(_environment_name)]
Repository = Annotated[str, _rule(_repository)]
Guid = Annotated[str, _rule(_guid)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Seconds = Annotated[float, Field(gt=0)]
ValuePath = Annotated[str, _rule(_value_path)]
AppPath = Annotated[str, _rule(_app_path)]
Template = Annotated[str, _rule(_not_blank), _rule(_template)]
Number = Annotated[float, Field(allow_inf_nan=False)]
ServiceName = Annotated[str, _rule(_dns_label)]
Weight = Annotated[int, Field(gt=0, lt=100)]


class Spec(BaseModel):
    """Base of the file's models: camelCase keys, no unknown keys, no coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True,
                              alias_generator=to_camel, populate_by_name=False)


class RegistrySpec(Spec):
    """`registries.<name>`: the shape `RegistryEndpoint.from_dict` accepts."""

    url: Annotated[str, _rule(_registry_url)]
    auth: Literal["azure", "anonymous"] = "azure"
    ca_bundle: Text | None = None
    managed_identity_client_id: Guid | None = None


class TagsSpec(Spec):
    """Which tags start a release."""

    pattern: Annotated[str, _rule(_regex)] | None = None
    semver: Annotated[str, _rule(_range)] | None = None
    allow_latest: bool | None = None
    include_prerelease: bool | None = None

    _not_null = not_null("allow_latest", "include_prerelease")


class SupersedeSpec(Spec):
    """What a newer push does to older releases."""

    waiting_at_gate: bool | None = None
    ignore_older_than_production: bool | None = None

    _not_null = not_null("waiting_at_gate", "ignore_older_than_production")


class ApproversSpec(Spec):
    """Who may approve: user principal names / object ids, and groups."""

    users: list[Text] = []
    groups: list[Text] = []


class EscalationSpec(Spec):
    """Whom to tell when a gate is still waiting after some reminders."""

    group: Text
    after_reminders: Annotated[int, Field(ge=1)]


class GateSpec(Spec):
    """An approval before an environment; unset fields come from `defaults.gate`."""

    approvers: ApproversSpec | None = None
    required_approvals: Annotated[int, Field(ge=1)] | None = None
    deadline: Duration | None = None
    reminder_interval: Duration | None = None
    escalation: EscalationSpec | None = None
    teams_webhook_secret: SecretName | None = None

    _not_null = not_null("required_approvals", "deadline")


class AcrImportSpec(Spec):
    """The target ACR as an Azure resource, for server-side ImportImage."""

    subscription_id: Text
    resource_group: Text
    registry_name: Text


class PromotionSpec(Spec):
    """Retag into a namespace (`prod/`) of the same registry, or copy into another registry."""

    namespace: Annotated[str, _rule(_namespace)] | None = None
    registry: Name | None = None
    acr_import: AcrImportSpec | None = None

    @model_validator(mode="after")
    def _needs_a_target(self) -> PromotionSpec:
        if self.namespace is None and self.registry is None:
            raise ValueError("needs a namespace (such as 'prod/') or a target registry")
        if self.acr_import is not None and self.registry is None:
            raise ValueError("acrImport needs a target registry (the registry ACR imports into)")
        return self


class AksSpec(Spec):
    """An AKS API server reached with an Entra token."""

    server: Annotated[str, _rule(_https_url)]
    ca_data: Annotated[str, _rule(_base64)]
    managed_identity_client_id: Guid | None = None


class ClusterSpec(Spec):
    """A cluster and how to connect: a kubeconfig secret, or AKS with an Entra token."""

    name: Name
    kubeconfig_secret: SecretName | None = None
    aks: AksSpec | None = None

    @model_validator(mode="after")
    def _one_connection(self) -> ClusterSpec:
        if (self.kubeconfig_secret is None) == (self.aks is None):
            raise ValueError("needs exactly one of kubeconfigSecret or aks")
        return self


class HelmTestSpec(Spec):
    """`helm test` with a timeout for the test hooks."""

    timeout: Duration = helm.DEFAULT_TEST_TIMEOUT


class ImageValuesSpec(Spec):
    """The value keys that receive the image: both are required when this is written."""

    repository: ValuePath
    digest: ValuePath


class HelmSpec(Spec):
    """A chart released with Helm; unset fields take the defaults in docs/release-policy.md."""

    chart: Annotated[str, _rule(_chart)]
    version: Annotated[str, _rule(_chart_version)] = helm.IMAGE_VERSION
    release: Annotated[str, _rule(_release_name)] | None = None
    values: Annotated[dict[str, JsonValue], _rule(_json_values)] = {}
    values_files: list[AppPath] = []
    image_values: ImageValuesSpec = ImageValuesSpec(repository="image.repository",
                                                    digest="image.digest")
    secret_values: dict[ValuePath, SecretName] = {}
    max_history: Annotated[int, Field(ge=1)] = helm.DEFAULT_MAX_HISTORY
    test: Annotated[HelmTestSpec | None, BeforeValidator(_helm_test)] = None
    wait_for_chart: Duration = helm.DEFAULT_WAIT_FOR_CHART

    _not_null = not_null("version", "release", "values", "values_files", "image_values",
                         "secret_values", "max_history", "test", "wait_for_chart")


class TargetSpec(Spec):
    """Where a release deploys: the container of a Deployment, or a Helm chart's release."""

    cluster: ClusterSpec
    namespace: Annotated[str, _rule(_dns_label)]
    deployment: Annotated[str, _rule(_dns_subdomain)] | None = None
    container: Annotated[str, _rule(_dns_label)] | None = None
    helm: HelmSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TargetSpec:
        written = [name for name in ("deployment", "container") if getattr(self, name)]
        if self.helm is not None:
            if written:
                raise ValueError(f"has both helm and {' and '.join(written)}: a target is a"
                                 " Deployment (deployment, container) or a Helm chart (helm)")
        elif not written:
            raise ValueError("needs deployment and container (a Deployment target) or helm"
                             " (a Helm chart target)")
        elif len(written) == 1:  # reported as the schema reports any missing field
            missing = "container" if written == ["deployment"] else "deployment"
            raise ValidationError.from_exception_data(
                "TargetSpec", [InitErrorDetails(type="missing", loc=(missing,), input={})])
        return self


class KeyVaultSpec(Spec):
    """Secrets from a Key Vault, read as the app's (or a user-assigned) identity."""

    url: Annotated[str, _rule(_vault_url)]
    managed_identity_client_id: Guid | None = None
    ca_bundle: Text | None = None


class LocalSecretsSpec(Spec):
    """Secrets from app settings `SECRETS__<ENV>__<NAME>`."""

    environment: EnvironmentName


class SecretsSpec(Spec):
    """Where an environment's secrets come from: exactly one of keyVault or local."""

    key_vault: KeyVaultSpec | None = None
    local: LocalSecretsSpec | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretsSpec:
        if (self.key_vault is None) == (self.local is None):
            raise ValueError("needs exactly one of keyVault or local")
        return self


class CheckSpec(Spec):
    """An HTTP verification check: the shape `HttpCheck.from_dict` accepts."""

    name: Text | None = None
    url: Annotated[str, _rule(_http_url)]
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    body_contains: str | None = None
    json_field: Text | None = None
    json_equals: JsonValue = None
    headers: dict[Annotated[str, _rule(_header)], SecretName] = {}
    attempt_timeout_seconds: Seconds = 5.0
    interval_seconds: Seconds = 2.0
    within_seconds: Seconds = 60.0

    @model_validator(mode="after")
    def _equals_needs_field(self) -> CheckSpec:
        if self.json_equals is not None and self.json_field is None:
            raise ValueError("jsonEquals needs jsonField (the dotted path it compares)")
        return self


class RollbackSpec(Spec):
    """What happens when an environment's rollout or verification fails."""

    on_failure: Literal["environment", "environmentAndEarlier", "none"] | None = None
    pause_for_human: bool | None = None
    pause_deadline: Duration | None = None

    _not_null = not_null("on_failure", "pause_for_human", "pause_deadline")


class ThresholdSpec(Spec):
    """The range a metric's number must lie in; both ends included."""

    min: Number | None = None
    max: Number | None = None

    _not_null = not_null("min", "max")

    @model_validator(mode="after")
    def _a_range(self) -> ThresholdSpec:
        if self.min is None and self.max is None:
            raise ValueError("needs min or max (or both)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: no value can pass")
        return self


class HttpMetricSpec(Spec):
    """Requests to a URL per measurement: the share that passed, or the slowest in ms."""

    url: Annotated[str, _rule(_http_template)]
    value: Literal["successRate", "latencyMs"] = "successRate"
    requests: Annotated[int, Field(ge=1, le=100)] = 1
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    body_contains: str | None = None
    json_field: Text | None = None
    json_equals: JsonValue = None
    headers: dict[Annotated[str, _rule(_header)], SecretName] = {}
    attempt_timeout_seconds: Seconds = analysis.DEFAULT_HTTP_TIMEOUT_SECONDS

    _not_null = not_null("value", "requests", "expect_status", "headers",
                         "attempt_timeout_seconds")

    @model_validator(mode="after")
    def _equals_needs_field(self) -> HttpMetricSpec:
        if self.json_equals is not None and self.json_field is None:
            raise ValueError("jsonEquals needs jsonField (the dotted path it compares)")
        return self


class PrometheusMetricSpec(Spec):
    """A PromQL instant query; auth none, a bearer token from a secret, or an Entra token."""

    url: Annotated[str, _rule(_http_url)]
    query: Template
    bearer_secret: SecretName | None = None
    azure: bool = False
    managed_identity_client_id: Guid | None = None

    _not_null = not_null("azure")

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusMetricSpec:
        if self.azure and self.bearer_secret is not None:
            raise ValueError("has both bearerSecret and azure: pick one way to authenticate")
        if self.managed_identity_client_id is not None and not self.azure:
            raise ValueError("managedIdentityClientId needs azure: true")
        parts = urlsplit(self.url)
        loopback = parts.hostname in _LOOPBACK
        if (self.azure or self.bearer_secret) and parts.scheme != "https" and not loopback:
            raise ValueError(f"{self.url!r} must be https:// to send a token (plain http only"
                             " on loopback)")
        if self.azure and not loopback and \
                not str(parts.hostname).endswith(AZURE_PROMETHEUS_SUFFIXES):
            raise ValueError(f"{self.url!r} is not an Azure Monitor workspace"
                             f" (*{AZURE_PROMETHEUS_SUFFIXES[0]}): azure: true sends the app's"
                             " Entra token, and only there")
        return self


class AppInsightsMetricSpec(Spec):
    """A KQL query through azure-monitor-query; the number is `column` of the first row."""

    resource_id: Annotated[str, _rule(_resource_id)] | None = None
    workspace_id: Guid | None = None
    query: Template
    column: Text
    timespan: Duration | None = None
    endpoint: Annotated[str, _rule(_https_url)] | None = None
    ca_bundle: Text | None = None
    managed_identity_client_id: Guid | None = None

    _not_null = not_null("timespan")

    @model_validator(mode="after")
    def _one_source(self) -> AppInsightsMetricSpec:
        if (self.resource_id is None) == (self.workspace_id is None):
            raise ValueError("needs exactly one of resourceId (an Application Insights"
                             " resource) or workspaceId (a Log Analytics workspace)")
        host = urlsplit(self.endpoint).hostname if self.endpoint else None
        if host is not None and host not in AZURE_LOGS_HOSTS + _LOOPBACK:
            raise ValueError(f"endpoint {self.endpoint!r} is not an Azure Monitor Logs API"
                             f" ({', '.join(AZURE_LOGS_HOSTS)}) nor on loopback: the query"
                             " sends the app's Entra token there")
        return self


class JobMetricSpec(Spec):
    """A Kubernetes Job made from this template; it passes when the Job succeeds."""

    image: Template
    command: list[Template] = []
    args: list[Annotated[str, _rule(_template)]] = []
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 0
    timeout: Duration = analysis.DEFAULT_JOB_TIMEOUT

    _not_null = not_null("command", "args", "backoff_limit", "timeout")


class MetricSpec(Spec):
    """One number per measurement from exactly one provider, compared with `threshold`."""

    name: Name
    http: HttpMetricSpec | None = None
    prometheus: PrometheusMetricSpec | None = None
    app_insights: AppInsightsMetricSpec | None = None
    job: JobMetricSpec | None = None
    threshold: ThresholdSpec | None = None

    @model_validator(mode="after")
    def _one_provider(self) -> MetricSpec:
        written = [name for name in ("http", "prometheus", "app_insights", "job")
                   if getattr(self, name) is not None]
        if len(written) != 1:
            raise ValueError("needs exactly one provider: http, prometheus, appInsights or job")
        if self.job is not None and self.threshold is not None:
            raise ValueError("a job metric passes when the Job succeeds: leave threshold out")
        if self.job is None and self.threshold is None:
            raise ValidationError.from_exception_data(
                "MetricSpec", [InitErrorDetails(type="missing", loc=("threshold",), input={})])
        return self


class AnalysisSpec(Spec):
    """Metrics measured every `interval`, for `duration` or `measurements` times."""

    interval: Duration = analysis.DEFAULT_INTERVAL
    initial_delay: Duration | None = None
    duration: Duration | None = None
    measurements: Annotated[int, Field(ge=1, le=analysis.MAX_MEASUREMENTS)] | None = None
    failure_limit: Annotated[int, Field(ge=0)] = 0
    on_no_data: Literal["fail", "inconclusive"] = "fail"
    retries: Annotated[int, Field(ge=0, le=10)] = analysis.DEFAULT_RETRIES
    metrics: Annotated[list[MetricSpec], Field(min_length=1)]

    _not_null = not_null("interval", "failure_limit", "on_no_data", "retries")

    @model_validator(mode="after")
    def _how_long(self) -> AnalysisSpec:
        if (self.duration is None) == (self.measurements is None):
            raise ValueError("needs exactly one of duration (bake time) or measurements (a"
                             " count)")
        return self


class BlueGreenSpec(Spec):
    """The new version beside the old, behind `previewService`, then switched into
    `activeService`."""

    preview_service: ServiceName
    active_service: ServiceName
    scale_down_delay: Duration = DEFAULT_SCALE_DOWN_DELAY
    pre_promotion_analysis: bool | None = None
    post_promotion_analysis: bool | None = None

    _not_null = not_null("scale_down_delay", "pre_promotion_analysis",
                         "post_promotion_analysis")


class CanaryStepSpec(Spec):
    """`{weight: 10}` or `{pause: 30s}`."""

    weight: Weight | None = None
    pause: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CanaryStepSpec:
        if (self.weight is None) == (self.pause is None):
            raise ValueError("a step is {weight: <1-99>} or {pause: <duration>}")
        return self


class CanarySpec(Spec):
    """A canary Deployment beside the stable one; weights are shares of `replicas` pods."""

    replicas: Annotated[int, Field(ge=2, le=1000)]
    steps: Annotated[list[CanaryStepSpec], Field(min_length=1)] | None = None
    weights: Annotated[list[Weight], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _steps_or_weights(self) -> CanarySpec:
        if (self.steps is None) == (self.weights is None):
            raise ValueError("needs exactly one of steps or weights")
        return self


class StrategySpec(Spec):
    """`blueGreen` or `canary` (`strategy: rolling`, the default, is read as no StrategySpec)."""

    blue_green: BlueGreenSpec | None = None
    canary: CanarySpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StrategySpec:
        if (self.blue_green is None) == (self.canary is None):
            raise ValueError("needs exactly one of blueGreen or canary (or write strategy:"
                             " rolling)")
        return self


class EnvironmentSpec(Spec):
    """One stage of a service's path to production."""

    name: EnvironmentName
    target: TargetSpec
    secrets: SecretsSpec | None = None
    checks: list[CheckSpec] = []
    gate: GateSpec | None = None
    promotion: PromotionSpec | None = None
    rollout_timeout: Duration | None = None
    rollback: RollbackSpec | None = None
    analysis: AnalysisSpec | None = None
    strategy: Annotated[StrategySpec | None, BeforeValidator(_strategy)] = None

    _not_null = not_null("rollout_timeout", "analysis")


class ServiceSpec(Spec):
    """A service: where its images are pushed, which tags count, its environments in order."""

    registry: Name | None = None
    repository: Repository
    tags: TagsSpec | None = None
    supersede: SupersedeSpec | None = None
    environments: Annotated[list[EnvironmentSpec], Field(min_length=1)]


class DefaultsSpec(Spec):
    """Values every service inherits unless it sets its own."""

    registry: Name | None = None
    tags: TagsSpec | None = None
    supersede: SupersedeSpec | None = None
    gate: GateSpec | None = None
    rollout_timeout: Duration | None = None
    rollback: RollbackSpec | None = None

    _not_null = not_null("rollout_timeout")


class PolicyDocument(Spec):
    """The whole file."""

    version: Literal[1] = 1
    defaults: DefaultsSpec = DefaultsSpec()
    registries: Annotated[dict[Name, RegistrySpec], Field(min_length=1)]
    services: Annotated[dict[Name, ServiceSpec], Field(min_length=1)]
