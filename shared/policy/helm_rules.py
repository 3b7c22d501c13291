"""Cross-field rules of Helm chart targets. Pure functions over a schema-checked document.

Chart registries, release names, chart versions from image tags, value keys, and the chart
a release carries from its first Helm environment to the later ones. Files (chart folders,
values files) are checked by `app_files.py`; uniqueness of releases by `semantics.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from . import helm
from .model import image_locations, registry_host, resolve_tags
from .schema import HelmSpec, PolicyDocument, ServiceSpec
from .source import PathPart

Path = tuple[PathPart, ...]
Finding = tuple[Path, str]
LineOf = Callable[[Sequence[PathPart]], int]

# Tags a `version: image` service must not accept: none of them names a chart version.
NOT_VERSIONS = ("latest", "main", "nightly", "dev", "1.4", "v1", "1.4.2.1", "sha-1a2b3c4",
                "1.4.2-", "release-1.4.2")


def check_service(document: PolicyDocument, name: str, service: ServiceSpec,
                  line_of: LineOf) -> Iterator[Finding]:
    """Every problem of the service's Helm targets."""
    first: tuple[HelmSpec, Path] | None = None
    previous: tuple[HelmSpec, Path] | None = None
    locations = image_locations(document, service)
    for index, environment in enumerate(service.environments):
        spec = environment.target.helm
        if spec is None:
            continue
        here: Path = ("services", name, "environments", index, "target", "helm")
        yield from _chart_registry(document, spec, here)
        if spec.release is None:
            yield from _default_release(name, here)
        if spec.version == helm.IMAGE_VERSION:
            yield from _image_versions(document, service, name, here)
        yield from _value_keys(spec, here)
        if first is None:
            first = (spec, here)
        else:
            promoted_to = locations[index][0] if environment.promotion is not None else None
            yield from _same_chart(document, spec, here, first, previous, promoted_to, line_of)
        previous = (spec, here)


def _registry_hosts(document: PolicyDocument) -> dict[str, str]:
    return {name: registry_host(spec.url) for name, spec in document.registries.items()}


def _chart_registry(document: PolicyDocument, spec: HelmSpec, here: Path) -> Iterator[Finding]:
    if not helm.is_oci(spec.chart):
        return
    host = registry_host(helm.split_oci(spec.chart)[0])
    hosts = _registry_hosts(document)
    if host not in hosts.values():
        known = ", ".join(f"{name}: {url}" for name, url in sorted(hosts.items()))
        yield (*here, "chart"), (f"chart registry {host!r} is not one of the policy's"
                                 f" registries ({known})")


def _default_release(service: str, here: Path) -> Iterator[Finding]:
    from helm_python import HelmInvalidArgError, validate_release_name  # Helm's own rule

    try:
        validate_release_name(service)
    except HelmInvalidArgError:
        yield here, (f"release defaults to the service name {service!r}, which is not a Helm"
                     " release name (up to 53 of a-z, 0-9, '-' and '.'); set release")


def _image_versions(document: PolicyDocument, service: ServiceSpec, name: str,
                    here: Path) -> Iterator[Finding]:
    """`version: image` needs every tag that starts a release to name a chart version."""
    tags = resolve_tags(document.defaults, service)
    where = (*here, "version")
    if tags.semver is not None:
        return  # the range admits version tags only (and never `latest`)
    if tags.pattern is None:
        yield where, (f"version: image needs version tags, but service {name!r} accepts every"
                      " tag: set tags.semver (such as '>=0.0.0') or a fixed chart version")
        return
    accepted = [tag for tag in NOT_VERSIONS if tags.accepts(tag)[0]]
    if accepted:
        yield where, (f"version: image needs version tags, but tags.pattern '{tags.pattern}'"
                      f" accepts {accepted[0]!r}, which is not a version: set tags.semver"
                      " (such as '>=0.0.0') or a fixed chart version")


def _overlap(first: str, second: str) -> bool:
    """Whether two value paths are one path or one lies inside the other."""
    a, b = helm.value_path(first), helm.value_path(second)
    return a[:len(b)] == b or b[:len(a)] == a


def _value_keys(spec: HelmSpec, here: Path) -> Iterator[Finding]:
    image = {"repository": spec.image_values.repository, "digest": spec.image_values.digest}
    if _overlap(image["repository"], image["digest"]):
        yield (*here, "imageValues"), (f"repository {image['repository']!r} and digest"
                                       f" {image['digest']!r} must be separate value keys")
    for key in spec.secret_values:
        for role, path in image.items():
            if _overlap(key, path):
                yield (*here, "secretValues", key), (
                    f"{key!r} overlaps {path!r}, the key that receives the image's {role}"
                    " (imageValues)")
    keys = list(spec.secret_values)
    for position, key in enumerate(keys):
        for other in keys[:position]:
            if _overlap(key, other):
                yield (*here, "secretValues", key), f"{key!r} overlaps {other!r}"
    seen: set[str] = set()
    for role, path in image.items():
        problem = _sets(spec.values, helm.value_path(path))
        if problem and problem not in seen:
            seen.add(problem)
            yield (*here, "values"), (f"{problem}: the product sets {path} to the image's"
                                      f" {role} (imageValues.{role}); leave it out of values")


def _sets(values: Mapping[str, Any], path: tuple[str, ...]) -> str | None:
    """Why inline `values` collide with the value key `path`, or None."""
    node: Any = values
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
        written = ".".join(path[:depth + 1])
        if depth + 1 == len(path):
            return f"values sets {written}"
        if not isinstance(node, Mapping):
            return f"values sets {written} to a non-mapping"
    return None


def _chart_name(chart: str) -> str:
    return chart.rstrip("/").rsplit("/", 1)[-1]


def _same_chart(document: PolicyDocument, spec: HelmSpec, here: Path,
                first: tuple[HelmSpec, Path], previous: tuple[HelmSpec, Path] | None,
                promoted_to: str | None, line_of: LineOf) -> Iterator[Finding]:
    """A release deploys the chart its first Helm environment verified, promoted or not."""
    origin, origin_path = first
    where = (*here, "chart")
    at = f"line {line_of((*origin_path, 'chart'))}"
    if not helm.is_oci(origin.chart):
        if spec.chart != origin.chart:
            yield where, (f"chart {spec.chart!r} is not the chart folder {origin.chart!r} the"
                          f" first Helm environment verifies ({at}): a release deploys one chart")
        return
    if not helm.is_oci(spec.chart):
        yield where, (f"chart {spec.chart!r} is a folder, but the first Helm environment"
                      f" verifies the OCI chart {origin.chart!r} ({at}): a release deploys one"
                      " chart")
        return
    if _chart_name(spec.chart) != _chart_name(origin.chart):
        yield where, (f"chart {spec.chart!r} is not named like {origin.chart!r} ({at}), the"
                      " chart the first Helm environment verifies: a release deploys one chart")
        return
    if promoted_to is None:
        assert previous is not None
        if spec.chart != previous[0].chart:
            yield where, (f"chart {spec.chart!r} differs from {previous[0].chart!r}"
                          f" (line {line_of((*previous[1], 'chart'))}) but this environment has"
                          " no promotion to copy the chart there")
        return
    target_host = _registry_hosts(document).get(promoted_to)
    host = registry_host(helm.split_oci(spec.chart)[0])
    if target_host is not None and host != target_host:
        yield where, (f"chart registry {host!r} is not {target_host!r}, the registry this"
                      " environment's promotion writes to: the chart is promoted with the image")
