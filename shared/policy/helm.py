"""The Helm chart target of an environment: typed, with its plain-JSON snapshot form.

`HelmTarget.from_dict` reads the `target.deploy` dict a snapshot carries (`"kind": "helm"`)
and `to_dict` writes it back unchanged; values files are already read into it (the plan
never reads files). `release_values` composes what a release installs with. Pure: the
runtime that installs charts lives elsewhere.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

KIND = "helm"
IMAGE_VERSION = "image"
DEFAULT_MAX_HISTORY = 10
DEFAULT_WAIT_FOR_CHART = timedelta(minutes=10)
DEFAULT_TEST_TIMEOUT = timedelta(minutes=5)  # `helm test --timeout`'s own default
OCI_SCHEME = "oci://"

_NUMBER = r"(?:0|[1-9]\d*)"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
SEMVER = re.compile(rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-{_PRE_ID}(?:\.{_PRE_ID})*)?"
                    rf"(?:\+{_BUILD_ID}(?:\.{_BUILD_ID})*)?")
_SEGMENT = r"[A-Za-z_][A-Za-z0-9_-]*"
VALUE_PATH = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")


def chart_version_for_tag(tag: str) -> str | None:
    """The chart version an image tag names (`v1.4.2` → `1.4.2`); None when it names none.

    A leading `v` is dropped and `_` reads as `+` (Helm writes `+` as `_` in OCI tags)."""
    version = tag[1:] if tag[:1] in ("v", "V") else tag
    version = version.replace("_", "+", 1)
    return version if SEMVER.fullmatch(version) else None


def is_oci(chart: str) -> bool:
    """Whether `chart` is an OCI reference (else it is a chart folder of the app)."""
    return chart.startswith(OCI_SCHEME)


def split_oci(chart: str) -> tuple[str, str]:
    """(`host[:port]`, repository) of `oci://host[:port]/repository`."""
    host, _, repository = chart.removeprefix(OCI_SCHEME).partition("/")
    return host.lower(), repository


def value_path(path: str) -> tuple[str, ...]:
    """The keys of a dotted value path (`image.digest` → `("image", "digest")`)."""
    return tuple(path.split("."))


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` merged into a copy of `base` as Helm merges `-f` files: mappings merge key
    by key, anything else (lists included) replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_value(values: dict[str, Any], path: str, value: Any) -> None:
    """Set the dotted value key `path` in `values` (as `--set`), making mappings on the way."""
    *parents, last = value_path(path)
    node = values
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value


def json_problem(value: Any, path: tuple[str, ...] = ()) -> str | None:
    """Where `value` holds something JSON cannot carry (a date, a number key, NaN), or None."""
    at = ".".join(path) or "the top level"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"key {key!r} at {at} is not text (quote it)"
            found = json_problem(item, (*path, key))
            if found:
                return found
        return None
    if isinstance(value, list):
        for position, item in enumerate(value):
            found = json_problem(item, (*path[:-1], f"{path[-1] if path else ''}[{position}]"))
            if found:
                return found
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{at} is {value!r}, which JSON cannot carry"
    if value is None or isinstance(value, str | int | float | bool):
        return None
    return f"{at} is a {type(value).__name__} (quote dates and times)"


def get_value(values: Mapping[str, Any], path: str) -> Any:
    """The value at the dotted value key `path`, or None."""
    node: Any = values
    for key in value_path(path):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _seconds(duration: timedelta | None) -> int | None:
    return None if duration is None else int(duration.total_seconds())


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ValueError(f"policy snapshot: {where}.{key} is missing or not"
                         f" {getattr(kind, '__name__', 'valid')}")
    return value


def _registry(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
        raise ValueError(f"policy snapshot: {where}.chartRegistry is not a registry")
    return dict(value)


@dataclass(frozen=True)
class HelmTest:
    """`helm test` as the environment's acceptance tests; `timeout` bounds the test hooks."""

    enabled: bool = False
    timeout: timedelta | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> HelmTest:
        data = data or {}
        seconds = data.get("timeoutSeconds")
        return cls(enabled=bool(data.get("enabled")),
                   timeout=timedelta(seconds=seconds) if seconds else None)

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "timeoutSeconds": _seconds(self.timeout)}


@dataclass(frozen=True)
class ImageValues:
    """The value keys (dotted paths) that receive the image's repository and digest."""

    repository: str = "image.repository"
    digest: str = "image.digest"

    def to_dict(self) -> dict[str, str]:
        return {"repository": self.repository, "digest": self.digest}


@dataclass(frozen=True)
class ValuesFile:
    """A values file shipped with the app, as read at policy load (`values` None: not read,
    the policy was parsed without an app root)."""

    path: str
    values: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "values": copy.deepcopy(self.values)}


@dataclass(frozen=True)
class HelmTarget:
    """A Helm release of a chart in one namespace of one cluster."""

    cluster: str
    namespace: str
    release: str
    chart: str
    version: str = IMAGE_VERSION
    values: dict[str, Any] = field(default_factory=dict)
    values_files: tuple[ValuesFile, ...] = ()
    image_values: ImageValues = ImageValues()
    secret_values: dict[str, str] = field(default_factory=dict)
    max_history: int = DEFAULT_MAX_HISTORY
    test: HelmTest = HelmTest()
    wait_for_chart: timedelta = DEFAULT_WAIT_FOR_CHART
    chart_registry: dict[str, Any] | None = None
    """The policy registry an OCI chart is in (its endpoint dict); None for a chart folder."""

    @property
    def oci(self) -> bool:
        """Whether the chart comes from a registry (else from a folder of the app)."""
        return is_oci(self.chart)

    def chart_version(self, tag: str) -> str:
        """The chart version a release of image `tag` deploys; ValueError when `version: image`
        and the tag is not a version."""
        if self.version != IMAGE_VERSION:
            return self.version
        version = chart_version_for_tag(tag)
        if version is None:
            raise ValueError(f"tag {tag!r} is not a semantic version, so it names no chart"
                             f" version of {self.chart} (version: image)")
        return version

    def release_values(self, repository: str, digest: str,
                       secrets: Mapping[str, str]) -> dict[str, Any]:
        """The values a release installs with: the values files in order, `values`, the
        secret values (`secrets` maps secret names to their values), then the image by digest.

        ValueError when a values file was not read at policy load or a secret is missing."""
        values: dict[str, Any] = {}
        for entry in self.values_files:
            if entry.values is None:
                raise ValueError(f"values file {entry.path} was not read when the policy was"
                                 " loaded (no app root)")
            values = merge_values(values, entry.values)
        values = merge_values(values, self.values)
        for key, name in self.secret_values.items():
            if name not in secrets:
                raise ValueError(f"secret {name!r} (for value {key}) was not given")
            set_value(values, key, secrets[name])
        set_value(values, self.image_values.repository, repository)
        set_value(values, self.image_values.digest, digest)
        return values

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "target.deploy") -> HelmTarget:
        """The Helm target of a snapshot (`to_dict`'s output); ValueError naming a bad field."""
        if not isinstance(data, Mapping) or data.get("kind") != KIND:
            raise ValueError(f"policy snapshot: {where} is not a helm target")
        files = []
        for entry in _get(data, "valuesFiles", list, where):
            values = entry.get("values") if isinstance(entry, Mapping) else None
            if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), str) or \
                    not isinstance(values, Mapping | None):
                raise ValueError(f"policy snapshot: {where}.valuesFiles has an entry without"
                                 " path or with values that are not a mapping")
            files.append(ValuesFile(entry["path"], dict(values) if values is not None else None))
        secret_values = _get(data, "secretValues", Mapping, where)
        if not all(isinstance(name, str) for name in secret_values.values()):
            raise ValueError(f"policy snapshot: {where}.secretValues must map keys to secret"
                             " names")
        image = _get(data, "imageValues", Mapping, where)
        return cls(cluster=_get(data, "cluster", str, where),
                   namespace=_get(data, "namespace", str, where),
                   release=_get(data, "release", str, where),
                   chart=_get(data, "chart", str, where),
                   version=_get(data, "version", str, where),
                   values=dict(_get(data, "values", Mapping, where)),
                   values_files=tuple(files),
                   image_values=ImageValues(_get(image, "repository", str, f"{where}.imageValues"),
                                            _get(image, "digest", str, f"{where}.imageValues")),
                   secret_values=dict(secret_values),
                   max_history=_get(data, "maxHistory", int, where),
                   test=HelmTest.from_dict(data.get("test")),
                   wait_for_chart=timedelta(
                       seconds=_get(data, "waitForChartSeconds", int, where)),
                   chart_registry=_registry(data.get("chartRegistry"), where))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "cluster": self.cluster, "namespace": self.namespace,
                "release": self.release, "chart": self.chart, "version": self.version,
                "values": copy.deepcopy(self.values),
                "valuesFiles": [entry.to_dict() for entry in self.values_files],
                "imageValues": self.image_values.to_dict(),
                "secretValues": dict(self.secret_values), "maxHistory": self.max_history,
                "test": self.test.to_dict(),
                "waitForChartSeconds": _seconds(self.wait_for_chart),
                "chartRegistry": copy.deepcopy(self.chart_registry)}
