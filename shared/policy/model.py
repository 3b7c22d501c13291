"""The resolved release policy: defaults applied, names resolved, ready to use and snapshot.

`Policy` answers ingestion's questions (which service owns a repository, is it a promotion
target); `Service` filters and orders tags and produces the plain-JSON snapshot that goes
into a release's orchestration input. Built by `loader.py` from a checked `PolicyDocument`;
nothing here reads files.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from . import helm
from .analysis import (
    JOB_THRESHOLD,
    Analysis,
    AppInsightsProvider,
    HttpProvider,
    JobProvider,
    Metric,
    PrometheusProvider,
    Provider,
    Threshold,
)
from .helm import HelmTarget, HelmTest, ImageValues, ValuesFile, is_oci, split_oci
from .schema import (
    AnalysisSpec,
    ClusterSpec,
    DefaultsSpec,
    EnvironmentSpec,
    GateSpec,
    HelmSpec,
    MetricSpec,
    PolicyDocument,
    RegistrySpec,
    RollbackSpec,
    ServiceSpec,
    Spec,
    StrategySpec,
)
from .strategy import ROLLING, BlueGreen, Canary, CanaryStep, Strategy, strategy_from_dict
from .versions import VersionKey, VersionRange, parse_range, parse_version, version_key

SNAPSHOT_VERSION = 1
DEFAULT_TAGS: dict[str, Any] = {"pattern": None, "semver": None, "allow_latest": False,
                                "include_prerelease": False}
DEFAULT_SUPERSEDE: dict[str, Any] = {"waiting_at_gate": True,
                                     "ignore_older_than_production": True}
DEFAULT_GATE: dict[str, Any] = {"approvers": None, "required_approvals": 1,
                                "deadline": timedelta(hours=72),
                                "reminder_interval": timedelta(hours=24), "escalation": None,
                                "teams_webhook_secret": None}
DEFAULT_PAUSE_DEADLINE = timedelta(hours=24)
DEFAULT_ROLLBACK: dict[str, Any] = {"on_failure": "environment", "pause_for_human": False,
                                    "pause_deadline": DEFAULT_PAUSE_DEADLINE}
DEFAULT_ROLLOUT_TIMEOUT = timedelta(minutes=10)
LATEST = "latest"


def layered(builtin: dict[str, Any], *layers: Spec | None) -> dict[str, Any]:
    """`builtin` overlaid with the fields each layer sets (later layers win; null is a value)."""
    values = dict(builtin)
    for layer in layers:
        if layer is not None:
            values.update({name: getattr(layer, name) for name in layer.model_fields_set})
    return values


def registry_endpoint(spec: RegistrySpec) -> dict[str, Any]:
    """The dict `shared.registry.client.RegistryEndpoint.from_dict` accepts."""
    return {"url": spec.url, "auth": spec.auth, "caBundle": spec.ca_bundle,
            "managedIdentityClientId": spec.managed_identity_client_id}


def registry_host(registry: str) -> str:
    """`myacr.azurecr.io` from a host or URL, lower-cased, without the default port."""
    text = registry.strip().lower()
    netloc = urlsplit(text if "://" in text else "https://" + text).netloc
    return netloc.removesuffix(":443")


def cluster_connection(spec: ClusterSpec) -> dict[str, Any]:
    """`{name, kubeconfigSecret, aks}`; `aks` is the dict `AksServer.from_dict` accepts."""
    aks = None
    if spec.aks is not None:
        aks = {"server": spec.aks.server, "caData": spec.aks.ca_data,
               "managedIdentityClientId": spec.aks.managed_identity_client_id}
    return {"name": spec.name, "kubeconfigSecret": spec.kubeconfig_secret, "aks": aks}


def check_dict(check: Any) -> dict[str, Any]:
    """A check with every field written out: the dict `HttpCheck.from_dict` accepts."""
    return {"name": check.name or check.url, "url": check.url,
            "expectStatus": check.expect_status, "bodyContains": check.body_contains,
            "jsonField": check.json_field, "jsonEquals": check.json_equals,
            "headers": dict(check.headers),
            "attemptTimeoutSeconds": check.attempt_timeout_seconds,
            "intervalSeconds": check.interval_seconds, "withinSeconds": check.within_seconds}


def _seconds(duration: timedelta | None) -> int | None:
    return None if duration is None else int(duration.total_seconds())


def _duration(seconds: Any) -> timedelta | None:
    """A snapshot's `…Seconds` back as a duration; None (or 0) reads as not set."""
    return timedelta(seconds=seconds) if seconds else None


def _required(data: Mapping[str, Any], key: str, where: str) -> Any:
    """`data[key]`, or a ValueError naming the snapshot field that is missing."""
    if not isinstance(data, Mapping) or data.get(key) is None:
        raise ValueError(f"policy snapshot: {where}.{key} is missing")
    return data[key]


@dataclass(frozen=True)
class TagFilter:
    """Which tags start a release: not `latest` (unless allowed), pattern, semver range."""

    pattern: str | None = None
    semver: str | None = None
    allow_latest: bool = False
    include_prerelease: bool = False

    @cached_property
    def _regex(self) -> re.Pattern[str] | None:
        return re.compile(self.pattern) if self.pattern is not None else None

    @cached_property
    def _range(self) -> VersionRange | None:
        return parse_range(self.semver) if self.semver is not None else None

    def accepts(self, tag: str) -> tuple[bool, str]:
        """(True, "") when the tag starts a release, else (False, why not)."""
        if tag == LATEST and not self.allow_latest:
            return False, f"tag {tag!r} is ignored (allowLatest is false)"
        if self._regex is not None and not self._regex.fullmatch(tag):
            return False, f"tag {tag!r} does not match pattern '{self.pattern}'"
        if self._range is not None:
            version = parse_version(tag)
            if version is None:
                return False, f"tag {tag!r} is not a semantic version (semver range" \
                              f" {self._range} needs one)"
            if not self._range.contains(version, self.include_prerelease):
                if version.prerelease and not self.include_prerelease:
                    return False, f"version {version} is a pre-release outside {self._range}" \
                                  " (name a pre-release of the same version in the range, or" \
                                  " set includePrerelease)"
                return False, f"version {version} is outside {self._range}"
        return True, ""

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "semver": self.semver, "allowLatest": self.allow_latest,
                "includePrerelease": self.include_prerelease}


@dataclass(frozen=True)
class Gate:
    """An approval before an environment, with its deadline, reminders and escalation."""

    users: tuple[str, ...]
    groups: tuple[str, ...]
    required_approvals: int
    deadline: timedelta
    reminder_interval: timedelta | None
    escalation_group: str | None
    escalate_after_reminders: int | None
    teams_webhook_secret: str | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "gate") -> Gate:
        """The gate of a snapshot (`to_dict`'s output); unset counts and lists read as none."""
        approvers = data.get("approvers") or {}
        escalation = data.get("escalation") or {}
        return cls(users=tuple(approvers.get("users") or ()),
                   groups=tuple(approvers.get("groups") or ()),
                   required_approvals=int(data.get("requiredApprovals") or 1),
                   deadline=timedelta(seconds=_required(data, "deadlineSeconds", where)),
                   reminder_interval=_duration(data.get("reminderIntervalSeconds")),
                   escalation_group=escalation.get("group"),
                   escalate_after_reminders=escalation.get("afterReminders"),
                   teams_webhook_secret=data.get("teamsWebhookSecret"))

    @property
    def reminders_before_deadline(self) -> int:
        """How many reminders are sent before the deadline (at every interval, strictly before)."""
        if self.reminder_interval is None:
            return 0
        return -(-self.deadline // self.reminder_interval) - 1

    def next_wake(self, opened: datetime, reminders_sent: int) -> datetime:
        """When a gate opened at `opened` wakes next: the next reminder, or the deadline.

        Counted from the opening, so a reminder sent late does not push the next one back."""
        deadline = opened + self.deadline
        if self.reminder_interval is None or reminders_sent >= self.reminders_before_deadline:
            return deadline
        return min(deadline, opened + (reminders_sent + 1) * self.reminder_interval)

    def escalated_to(self, reminder_number: int) -> str | None:
        """The escalation group told with this reminder (1-based), if any."""
        if self.escalation_group is None:
            return None
        after = self.escalate_after_reminders or 1
        return self.escalation_group if reminder_number >= after else None

    def to_dict(self) -> dict[str, Any]:
        escalation = None
        if self.escalation_group is not None:
            escalation = {"group": self.escalation_group,
                          "afterReminders": self.escalate_after_reminders}
        return {"approvers": {"users": list(self.users), "groups": list(self.groups)},
                "requiredApprovals": self.required_approvals,
                "deadlineSeconds": _seconds(self.deadline),
                "reminderIntervalSeconds": _seconds(self.reminder_interval),
                "escalation": escalation, "teamsWebhookSecret": self.teams_webhook_secret}


@dataclass(frozen=True)
class Promotion:
    """Where an image is copied or retagged before an environment deploys it."""

    namespace: str | None
    source_registry: dict[str, Any]
    source_repository: str
    target_registry: dict[str, Any]
    target_repository: str
    acr_import: dict[str, Any] | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "promotion") -> Promotion:
        """The promotion of a snapshot; a null `targetRegistry` is the source registry."""
        source = dict(_required(data, "sourceRegistry", where))
        target = data.get("targetRegistry")
        acr = data.get("acrImport")
        return cls(namespace=data.get("namespace"), source_registry=source,
                   source_repository=_required(data, "sourceRepository", where),
                   target_registry=dict(target) if target else source,
                   target_repository=_required(data, "targetRepository", where),
                   acr_import=dict(acr) if acr else None)

    def to_dict(self) -> dict[str, Any]:
        """`targetRegistry` is null when the target is the source registry."""
        same = self.target_registry == self.source_registry
        return {"namespace": self.namespace, "sourceRegistry": dict(self.source_registry),
                "sourceRepository": self.source_repository,
                "targetRegistry": None if same else dict(self.target_registry),
                "targetRepository": self.target_repository,
                "acrImport": dict(self.acr_import) if self.acr_import else None}


@dataclass(frozen=True)
class Rollback:
    """What a failed rollout or verification does."""

    on_failure: str
    pause_for_human: bool
    pause_deadline: timedelta | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Rollback:
        """The rollback of a snapshot; without one (or without `onFailure`) the environment
        is restored."""
        data = data or {}
        return cls(on_failure=str(data.get("onFailure") or "environment"),
                   pause_for_human=bool(data.get("pauseForHuman")),
                   pause_deadline=_duration(data.get("pauseDeadlineSeconds")))

    def to_dict(self) -> dict[str, Any]:
        return {"onFailure": self.on_failure, "pauseForHuman": self.pause_for_human,
                "pauseDeadlineSeconds": _seconds(self.pause_deadline)}


@dataclass(frozen=True)
class Environment:
    """One stage: where it deploys, its secrets, checks, gate, promotion and rollback, how
    traffic moves (`strategy`) and what is measured over time (`analysis`).

    `deploy_target` is the plain dict the deploy activities read; `helm` is its typed form
    when the target is a Helm chart."""

    name: str
    cluster: dict[str, Any]
    deploy_target: dict[str, Any]
    secrets: dict[str, Any]
    checks: tuple[dict[str, Any], ...]
    gate: Gate | None
    promotion: Promotion | None
    rollout_timeout: timedelta
    rollback: Rollback
    image_registry: dict[str, Any]
    image_repository: str
    analysis: Analysis | None = None
    strategy: Strategy = ROLLING

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        """The environment of a snapshot, read whole (`to_dict` writes it back as it was);
        ValueError naming the field a snapshot lacks.

        The cluster, secrets and checks dicts are the snapshot's own (a plan reads its input
        on every replay; `to_dict` copies them out)."""
        name = str(_required(data, "name", "environment"))
        where = f"environment {name!r}"
        target, image = _required(data, "target", where), _required(data, "image", where)
        gate, promotion = data.get("gate"), data.get("promotion")
        environment = cls(
            name=name, cluster=_required(target, "cluster", f"{where}.target"),
            deploy_target=dict(_required(target, "deploy", f"{where}.target")),
            secrets=_required(data, "secrets", where),
            checks=tuple(data.get("checks") or ()),
            gate=Gate.from_dict(gate, f"{where}.gate") if gate else None,
            promotion=Promotion.from_dict(promotion, f"{where}.promotion") if promotion else None,
            rollout_timeout=_duration(data.get("rolloutTimeoutSeconds"))
            or DEFAULT_ROLLOUT_TIMEOUT,
            rollback=Rollback.from_dict(data.get("rollback")),
            image_registry=dict(_required(image, "registry", f"{where}.image")),
            image_repository=str(_required(image, "repository", f"{where}.image")),
            analysis=Analysis.from_dict(data.get("analysis"), f"{where}.analysis"),
            strategy=strategy_from_dict(data.get("strategy"), f"{where}.strategy"))
        _ = environment.helm  # a Helm target is read whole here, so a broken one fails now
        return environment

    @cached_property
    def helm(self) -> HelmTarget | None:
        """The Helm chart target, or None for a Deployment target."""
        if self.deploy_target.get("kind") != helm.KIND:
            return None
        return HelmTarget.from_dict(self.deploy_target, f"environment {self.name!r}.target.deploy")

    def to_dict(self) -> dict[str, Any]:
        """The snapshot form; `analysis` and `strategy` are written only when the environment
        has them, so environments without them keep the snapshot written before they existed."""
        data = self._base_dict()
        if self.analysis is not None:
            data["analysis"] = self.analysis.to_dict()
        if self.strategy != ROLLING:
            data["strategy"] = self.strategy.to_dict()
        return data

    def _base_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "target": {"cluster": copy.deepcopy(self.cluster),
                           "deploy": copy.deepcopy(self.deploy_target)},
                "image": {"registry": dict(self.image_registry),
                          "repository": self.image_repository},
                "secrets": copy.deepcopy(self.secrets),
                "checks": copy.deepcopy(list(self.checks)),
                "gate": self.gate.to_dict() if self.gate else None,
                "promotion": self.promotion.to_dict() if self.promotion else None,
                "rolloutTimeoutSeconds": _seconds(self.rollout_timeout),
                "rollback": self.rollback.to_dict()}


@dataclass(frozen=True)
class Service:
    """A service's resolved policy."""

    name: str
    registry_name: str
    registry: dict[str, Any]
    repository: str
    tags: TagFilter
    supersede_waiting_at_gate: bool
    ignore_older_than_production: bool
    environments: tuple[Environment, ...]
    policy_source: str = ""
    policy_sha256: str = ""

    def accepts_tag(self, tag: str) -> tuple[bool, str]:
        """(True, "") when a push of `tag` starts a release, else (False, the reason)."""
        return self.tags.accepts(tag)

    @staticmethod
    def version_key(tag: str) -> VersionKey | None:
        """SemVer precedence key of a version tag (`v` prefix allowed); None otherwise."""
        return version_key(tag)

    def environment(self, name: str) -> Environment:
        """The environment called `name`; KeyError when there is none."""
        for environment in self.environments:
            if environment.name == name:
                return environment
        raise KeyError(f"service {self.name} has no environment {name!r}")

    @property
    def production(self) -> Environment:
        """The last environment: the one `ignoreOlderThanProduction` compares with."""
        return self.environments[-1]

    def snapshot(self) -> dict[str, Any]:
        """The resolved policy as plain JSON, for a release's orchestration input."""
        return {"snapshotVersion": SNAPSHOT_VERSION,
                "policy": {"source": self.policy_source, "sha256": self.policy_sha256},
                "service": self.name, "registryName": self.registry_name,
                "registry": dict(self.registry), "repository": self.repository,
                "tags": self.tags.to_dict(),
                "supersede": {"waitingAtGate": self.supersede_waiting_at_gate,
                              "ignoreOlderThanProduction": self.ignore_older_than_production},
                "environments": [environment.to_dict() for environment in self.environments]}


@dataclass(frozen=True)
class Policy:
    """All services of a policy file, with the registries they use."""

    source: str
    sha256: str
    registries: dict[str, dict[str, Any]]
    services: dict[str, Service] = field(default_factory=dict)

    def service(self, name: str) -> Service:
        """The service called `name`; KeyError when there is none."""
        return self.services[name]

    def service_for_repository(self, repository: str,
                               registry: str | None = None) -> Service | None:
        """The service whose images are pushed to `repository` (on `registry`, if given).

        None for unknown repositories and for promotion targets (our own retags)."""
        if self.is_promotion_target(repository, registry):
            return None
        for service in self.services.values():
            if service.repository == repository and (
                    registry is None or
                    registry_host(registry) == registry_host(service.registry["url"])):
                return service
        return None

    def is_promotion_target(self, repository: str, registry: str | None = None) -> bool:
        """Whether `repository` lies where a promotion writes (`prod/…` for namespace `prod/`).

        Cross-registry targets without a namespace need `registry` (the push's host)."""
        host = registry_host(registry) if registry is not None else None
        for service in self.services.values():
            for environment in service.environments:
                promotion = environment.promotion
                if promotion is None:
                    continue
                if host is not None and host != registry_host(promotion.target_registry["url"]):
                    continue
                if promotion.namespace is not None:
                    if repository.startswith(promotion.namespace):
                        return True
                elif host is not None and repository == promotion.target_repository:
                    return True
        return False

    def __len__(self) -> int:
        return len(self.services)


def resolve_tags(defaults: DefaultsSpec, spec: ServiceSpec) -> TagFilter:
    """The service's tag filter: built-ins, then `defaults.tags`, then its own `tags`."""
    return TagFilter(**layered(DEFAULT_TAGS, defaults.tags, spec.tags))


def resolve_supersede(defaults: DefaultsSpec, spec: ServiceSpec) -> dict[str, bool]:
    return layered(DEFAULT_SUPERSEDE, defaults.supersede, spec.supersede)


def resolve_gate(defaults: DefaultsSpec, spec: GateSpec) -> Gate:
    """A gate with `defaults.gate` and the built-ins filled in."""
    values = layered(DEFAULT_GATE, defaults.gate, spec)
    approvers, escalation = values["approvers"], values["escalation"]
    return Gate(users=tuple(approvers.users) if approvers else (),
                groups=tuple(approvers.groups) if approvers else (),
                required_approvals=values["required_approvals"], deadline=values["deadline"],
                reminder_interval=values["reminder_interval"],
                escalation_group=escalation.group if escalation else None,
                escalate_after_reminders=escalation.after_reminders if escalation else None,
                teams_webhook_secret=values["teams_webhook_secret"])


def resolve_rollback(defaults: DefaultsSpec, spec: RollbackSpec | None) -> Rollback:
    values = layered(DEFAULT_ROLLBACK, defaults.rollback, spec)
    return Rollback(values["on_failure"], values["pause_for_human"], values["pause_deadline"])


def resolve_analysis(spec: AnalysisSpec | None) -> Analysis | None:
    """The typed analysis of a checked spec: `duration` becomes whole intervals."""
    if spec is None:
        return None
    measurements = spec.measurements
    if measurements is None:
        assert spec.duration is not None  # the schema requires one of them
        measurements = spec.duration // spec.interval
    return Analysis(interval=spec.interval, measurements=measurements,
                    metrics=tuple(_metric(metric, spec.interval) for metric in spec.metrics),
                    duration=spec.duration, failure_limit=spec.failure_limit,
                    on_no_data=spec.on_no_data, retries=spec.retries,
                    initial_delay=spec.initial_delay)


def _metric(spec: MetricSpec, interval: timedelta) -> Metric:
    provider: Provider
    if spec.http is not None:
        http = spec.http
        provider = HttpProvider(url=http.url, value=http.value, requests=http.requests,
                                expect_status=http.expect_status,
                                body_contains=http.body_contains, json_field=http.json_field,
                                json_equals=copy.deepcopy(http.json_equals),
                                headers=dict(http.headers),
                                attempt_timeout_seconds=http.attempt_timeout_seconds)
    elif spec.prometheus is not None:
        prometheus = spec.prometheus
        auth = "azure" if prometheus.azure else "bearer" if prometheus.bearer_secret else "none"
        provider = PrometheusProvider(
            url=prometheus.url, query=prometheus.query, auth=auth,
            bearer_secret=prometheus.bearer_secret,
            managed_identity_client_id=prometheus.managed_identity_client_id)
    elif spec.app_insights is not None:
        insights = spec.app_insights
        provider = AppInsightsProvider(
            query=insights.query, column=insights.column,
            timespan=insights.timespan or interval, resource_id=insights.resource_id,
            workspace_id=insights.workspace_id, endpoint=insights.endpoint,
            ca_bundle=insights.ca_bundle,
            managed_identity_client_id=insights.managed_identity_client_id)
    else:
        job = spec.job
        assert job is not None  # the schema requires exactly one provider
        provider = JobProvider(image=job.image, command=tuple(job.command), args=tuple(job.args),
                               backoff_limit=job.backoff_limit, timeout=job.timeout)
    threshold = JOB_THRESHOLD if spec.threshold is None else \
        Threshold(spec.threshold.min, spec.threshold.max)
    return Metric(spec.name, provider, threshold)


def resolve_strategy(spec: StrategySpec | None, has_analysis: bool) -> Strategy:
    """The typed strategy; blue-green runs its analysis before the switch unless told not to."""
    if spec is None:
        return ROLLING
    if spec.blue_green is not None:
        blue_green = spec.blue_green
        pre = blue_green.pre_promotion_analysis
        return BlueGreen(preview_service=blue_green.preview_service,
                         active_service=blue_green.active_service,
                         scale_down_delay=blue_green.scale_down_delay,
                         pre_promotion_analysis=has_analysis if pre is None else pre,
                         post_promotion_analysis=bool(blue_green.post_promotion_analysis))
    canary = spec.canary
    assert canary is not None  # the schema requires exactly one kind
    steps = [CanaryStep(weight=step.weight, pause=step.pause) for step in canary.steps or ()] \
        or [CanaryStep(weight=weight) for weight in canary.weights or ()]
    return Canary(replicas=canary.replicas, steps=tuple(steps))


def service_registry_name(defaults: DefaultsSpec, spec: ServiceSpec) -> str | None:
    return spec.registry if spec.registry is not None else defaults.registry


def image_locations(document: PolicyDocument,
                    spec: ServiceSpec) -> list[tuple[str | None, str]]:
    """(registry name, repository) each environment deploys from, following promotions."""
    location = (service_registry_name(document.defaults, spec), spec.repository)
    locations = []
    for environment in spec.environments:
        promotion = environment.promotion
        if promotion is not None:
            target_registry = promotion.registry or location[0]
            location = (target_registry, f"{promotion.namespace or ''}{spec.repository}")
        locations.append(location)
    return locations


def build_policy(document: PolicyDocument, source: str, sha256: str,
                 files: Mapping[str, dict[str, Any]] | None = None) -> Policy:
    """Resolve a checked document (see `semantics.check`) into a Policy; `files` are the
    Helm values files read at load, by path (None: not read)."""
    registries = {name: registry_endpoint(spec) for name, spec in document.registries.items()}
    services = {name: _service(document, registries, name, spec, source, sha256, files)
                for name, spec in document.services.items()}
    return Policy(source, sha256, registries, services)


def _service(document: PolicyDocument, registries: dict[str, dict[str, Any]], name: str,
             spec: ServiceSpec, source: str, sha256: str,
             files: Mapping[str, dict[str, Any]] | None) -> Service:
    defaults = document.defaults
    registry_name = service_registry_name(defaults, spec)
    assert registry_name is not None  # semantics.check reports a service without a registry
    supersede = resolve_supersede(defaults, spec)
    environments = []
    previous: tuple[str | None, str] = (registry_name, spec.repository)
    for environment, location in zip(spec.environments, image_locations(document, spec),
                                     strict=True):
        environments.append(_environment(document, registries, environment, previous, location,
                                         name, files))
        previous = location
    return Service(name=name, registry_name=registry_name, registry=registries[registry_name],
                   repository=spec.repository, tags=resolve_tags(defaults, spec),
                   supersede_waiting_at_gate=supersede["waiting_at_gate"],
                   ignore_older_than_production=supersede["ignore_older_than_production"],
                   environments=tuple(environments), policy_source=source, policy_sha256=sha256)


def helm_target(spec: HelmSpec, cluster: str, namespace: str, service: str,
                files: Mapping[str, dict[str, Any]] | None,
                registries: Mapping[str, dict[str, Any]] | None = None) -> HelmTarget:
    """The Helm target of a checked spec; `files` holds the values files read at load (by
    path; None when the policy was parsed without an app root), `registries` the policy's
    (the one whose host an OCI chart names goes into the snapshot)."""
    test = HelmTest(True, spec.test.timeout) if spec.test is not None else HelmTest()
    return HelmTarget(
        cluster=cluster, namespace=namespace, release=spec.release or service,
        chart=spec.chart, version=spec.version, values=copy.deepcopy(spec.values),
        values_files=tuple(ValuesFile(path, copy.deepcopy(files[path]) if files else None)
                           for path in spec.values_files),
        image_values=ImageValues(spec.image_values.repository, spec.image_values.digest),
        secret_values=dict(spec.secret_values), max_history=spec.max_history, test=test,
        wait_for_chart=spec.wait_for_chart,
        chart_registry=_chart_registry(spec.chart, registries or {}))


def _chart_registry(chart: str, registries: Mapping[str, dict[str, Any]],
                    ) -> dict[str, Any] | None:
    """The registry whose host an OCI chart reference names (None for a folder)."""
    if not is_oci(chart):
        return None
    host = split_oci(chart)[0]
    for registry in registries.values():
        url = str(registry.get("url") or "")
        if urlsplit(url if "://" in url else "https://" + url).netloc.lower() == host:
            return dict(registry)
    return None


def _environment(document: PolicyDocument, registries: dict[str, dict[str, Any]],
                 spec: EnvironmentSpec, source: tuple[str | None, str],
                 location: tuple[str | None, str], service: str,
                 files: Mapping[str, dict[str, Any]] | None) -> Environment:
    defaults = document.defaults
    promotion = None
    if spec.promotion is not None:
        acr = spec.promotion.acr_import
        promotion = Promotion(
            namespace=spec.promotion.namespace,
            source_registry=registries[str(source[0])], source_repository=source[1],
            target_registry=registries[str(location[0])], target_repository=location[1],
            acr_import={"subscriptionId": acr.subscription_id,
                        "resourceGroup": acr.resource_group,
                        "registryName": acr.registry_name} if acr else None)
    if spec.secrets is None or spec.secrets.local is not None:
        local = spec.secrets.local.environment if spec.secrets and spec.secrets.local \
            else spec.name
        secrets: dict[str, Any] = {"local": {"environment": local}}
    else:
        vault = spec.secrets.key_vault
        assert vault is not None
        secrets = {"keyVault": {"url": vault.url,
                                "managedIdentityClientId": vault.managed_identity_client_id}}
        if vault.ca_bundle:
            secrets["keyVault"]["caBundle"] = vault.ca_bundle
    target = spec.target
    rollout_timeout = spec.rollout_timeout or defaults.rollout_timeout or DEFAULT_ROLLOUT_TIMEOUT
    deploy_target: dict[str, Any]
    if target.helm is not None:
        deploy_target = helm_target(target.helm, target.cluster.name, target.namespace,
                                    service, files, registries).to_dict()
    else:
        deploy_target = {"cluster": target.cluster.name, "namespace": target.namespace,
                         "deployment": target.deployment, "container": target.container}
    return Environment(
        name=spec.name, cluster=cluster_connection(target.cluster),
        deploy_target=deploy_target,
        secrets=secrets, checks=tuple(check_dict(check) for check in spec.checks),
        gate=resolve_gate(defaults, spec.gate) if spec.gate is not None else None,
        promotion=promotion, rollout_timeout=rollout_timeout,
        rollback=resolve_rollback(defaults, spec.rollback),
        image_registry=registries[str(location[0])], image_repository=location[1],
        analysis=resolve_analysis(spec.analysis),
        strategy=resolve_strategy(spec.strategy, spec.analysis is not None))
