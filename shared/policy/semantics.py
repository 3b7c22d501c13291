"""Rules that span fields: references, uniqueness, promotions, gates.

Helm targets: helm_rules.py; analysis and strategy: analysis_rules.py.

Runs on a document that passed the schema. Each finding is a field path and a message;
`line_of` (path → line) lets a message point at the other place involved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import analysis_rules, helm_rules
from .durations import format_duration
from .model import (
    cluster_connection,
    image_locations,
    resolve_gate,
    resolve_tags,
    service_registry_name,
)
from .schema import EnvironmentSpec, PolicyDocument, ServiceSpec
from .source import PathPart, format_path

Path = tuple[PathPart, ...]
Finding = tuple[Path, str]
LineOf = Callable[[Sequence[PathPart]], int]


def check(document: PolicyDocument, line_of: LineOf) -> list[Finding]:
    """Every cross-field problem of the document, in file order."""
    findings = list(_registries(document))
    findings += _repositories(document, line_of)
    findings += _namespaces(document, line_of)
    findings += _targets(document, line_of)
    for name, service in document.services.items():
        where: Path = ("services", name)
        findings += _tags(document, service, where)
        findings += _environments(document, service, where, line_of)
        findings += helm_rules.check_service(document, name, service, line_of)
        findings += analysis_rules.check_service(name, service, line_of)
    return findings


def _registries(document: PolicyDocument) -> Iterator[Finding]:
    known = sorted(document.registries)

    def unknown(name: str) -> str:
        return f"unknown registry {name!r} (registries: {', '.join(known)})"

    if document.defaults.registry is not None and \
            document.defaults.registry not in document.registries:
        yield ("defaults", "registry"), unknown(document.defaults.registry)
    for name, service in document.services.items():
        registry = service_registry_name(document.defaults, service)
        if registry is None:
            yield ("services", name), "no registry: set registry here or defaults.registry"
        elif service.registry is not None and registry not in document.registries:
            yield ("services", name, "registry"), unknown(registry)
        for index, environment in enumerate(service.environments):
            promotion = environment.promotion
            if promotion and promotion.registry and promotion.registry not in document.registries:
                yield (("services", name, "environments", index, "promotion", "registry"),
                       unknown(promotion.registry))


def _repositories(document: PolicyDocument, line_of: LineOf) -> Iterator[Finding]:
    owners: dict[str, str] = {}
    for name, service in document.services.items():
        owner = owners.setdefault(service.repository, name)
        if owner != name:
            yield (("services", name, "repository"),
                   f"repository {service.repository!r} already belongs to service {owner!r}"
                   f" (line {line_of(('services', owner, 'repository'))}); a repository"
                   " belongs to one service only")


def _namespaces(document: PolicyDocument, line_of: LineOf) -> Iterator[Finding]:
    """A service's repository must not lie where another service's promotions write."""
    defaults = document.defaults
    for owner, service in document.services.items():
        for index, environment in enumerate(service.environments):
            promotion = environment.promotion
            if promotion is None or promotion.namespace is None:
                continue
            target = promotion.registry or service_registry_name(defaults, service)
            where = ("services", owner, "environments", index, "promotion", "namespace")
            for name, other in document.services.items():
                if name != owner and other.repository.startswith(promotion.namespace) and \
                        service_registry_name(defaults, other) == target:
                    yield (("services", name, "repository"),
                           f"repository {other.repository!r} lies in namespace"
                           f" {promotion.namespace!r} that service {owner!r} promotes into"
                           f" (line {line_of(where)}): its pushes would be taken for"
                           " promotions and ignored")


def _targets(document: PolicyDocument, line_of: LineOf) -> Iterator[Finding]:
    """One cluster name, one connection; one Deployment container (or Helm release), one
    environment."""
    clusters: dict[str, tuple[dict[str, Any], Path]] = {}
    containers: dict[tuple[str | None, ...], Path] = {}
    for name, service in document.services.items():
        for index, environment in enumerate(service.environments):
            where: Path = ("services", name, "environments", index, "target")
            target = environment.target
            connection = cluster_connection(target.cluster)
            first = clusters.setdefault(target.cluster.name, (connection, where))
            if first[0] != connection:
                yield (*where, "cluster"), (
                    f"cluster {target.cluster.name!r} is defined differently at line"
                    f" {line_of((*first[1], 'cluster'))}: one cluster name, one connection")
            if target.helm is not None:
                release = target.helm.release or name
                key: tuple[str | None, ...] = (target.cluster.name, target.namespace, release)
                what = f"Helm release {target.namespace}/{release} on {target.cluster.name}"
            else:
                key = (target.cluster.name, target.namespace, target.deployment,
                       target.container)
                what = (f"container {target.container!r} of deployment"
                        f" {target.namespace}/{target.deployment} on {target.cluster.name}")
            other = containers.setdefault(key, where)
            if other != where:
                yield where, (f"{what} is already the target of {format_path(other[:-1])}"
                              f" (line {line_of(other)})")


def _tags(document: PolicyDocument, service: ServiceSpec, where: Path) -> Iterator[Finding]:
    tags = resolve_tags(document.defaults, service)
    if not tags.allow_latest:
        return
    path: Path = (*where, "tags") if service.tags is not None else ("defaults", "tags")
    if tags.semver is not None:
        yield path, (f"allowLatest is true, but 'latest' is not a version, so semver range"
                     f" {tags.semver!r} rejects it; drop one of them")
    elif tags.pattern is not None and not tags.accepts("latest")[0]:
        yield path, (f"allowLatest is true, but pattern '{tags.pattern}' rejects 'latest';"
                     " drop one of them")


def _environments(document: PolicyDocument, service: ServiceSpec, where: Path,
                  line_of: LineOf) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    locations = image_locations(document, service)
    for index, environment in enumerate(service.environments):
        here: Path = (*where, "environments", index)
        if environment.name in seen:
            first = line_of((*where, "environments", seen[environment.name], "name"))
            yield (*here, "name"), (f"duplicate environment {environment.name!r} (first at line"
                                    f" {first})")
        seen.setdefault(environment.name, index)
        if environment.promotion is not None:
            if index == 0:
                yield (*here, "promotion"), ("the first environment cannot have a promotion:"
                                             " it deploys the image as pushed")
            else:
                yield from _promotion(service, environment, here, locations[index - 1],
                                      locations[index])
        yield from _checks(environment, here)
        if environment.gate is not None:
            yield from _gate(document, environment, here)


def _promotion(service: ServiceSpec, environment: EnvironmentSpec, here: Path,
               source: tuple[str | None, str],
               target: tuple[str | None, str]) -> Iterator[Finding]:
    promotion = environment.promotion
    assert promotion is not None
    namespace = promotion.namespace
    if namespace is not None and service.repository.startswith(namespace):
        yield (*here, "promotion", "namespace"), (
            f"namespace {namespace!r} contains the source repository {service.repository!r};"
            " promote into a namespace outside it")
    elif source == target:
        yield (*here, "promotion"), (f"promotes {target[1]} onto itself; give a namespace or"
                                     " another registry")


def _checks(environment: EnvironmentSpec, here: Path) -> Iterator[Finding]:
    names: set[str] = set()
    for index, check in enumerate(environment.checks):
        name = check.name or check.url
        if name in names:
            yield (*here, "checks", index, "name"), (f"duplicate check name {name!r} in"
                                                     f" environment {environment.name!r}")
        names.add(name)


def _gate(document: PolicyDocument, environment: EnvironmentSpec,
          here: Path) -> Iterator[Finding]:
    assert environment.gate is not None
    gate = resolve_gate(document.defaults, environment.gate)
    where: Path = (*here, "gate")
    if not gate.users and not gate.groups:
        yield where, "needs approvers (users or groups), here or in defaults.gate"
    elif not gate.groups and gate.required_approvals > len(gate.users):
        yield where, (f"requiredApprovals is {gate.required_approvals} but only"
                      f" {len(gate.users)} approver(s) are listed")
    interval = gate.reminder_interval
    if interval is not None and interval >= gate.deadline:
        yield where, (f"reminderInterval {format_duration(interval)} is not shorter than the"
                      f" deadline {format_duration(gate.deadline)}: no reminder would be sent")
    elif gate.escalation_group is not None:
        after = gate.escalate_after_reminders or 0
        if interval is None:
            yield where, "escalation needs reminderInterval (it follows reminders)"
        elif after > gate.reminders_before_deadline:
            yield where, (f"escalation after {after} reminder(s) never happens: only"
                          f" {gate.reminders_before_deadline} fit before the deadline"
                          f" {format_duration(gate.deadline)} (every"
                          f" {format_duration(interval)})")
