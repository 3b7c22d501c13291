"""The values a release gives its chart, in the policy's order: values files, inline
values, secret values, then the image by digest (later ones win). Pure: secrets arrive as
a lookup, and nothing here is logged or returned to the orchestrator.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from shared.policy.helm import HelmTarget, value_path


def release_values(target: HelmTarget, repository: str, digest: str,
                   secret: Callable[[str], str]) -> dict[str, Any]:
    """Every value the chart gets; `secret(name)` reads one of the environment's secrets."""
    values: dict[str, Any] = {}
    for entry in target.values_files:
        merge(values, entry.values or {})
    merge(values, target.values)
    for key, name in sorted(target.secret_values.items()):
        put(values, key, secret(name))
    put(values, target.image_values.repository, repository)
    put(values, target.image_values.digest, digest)
    return values


def merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Merge `values` into `into` as Helm merges values files: mappings key by key, anything
    else replaced."""
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) \
                else copy.deepcopy(value)


def put(values: dict[str, Any], path: str, value: Any) -> None:
    """Set the dotted `path`, making (or replacing by) mappings on the way."""
    *parents, last = value_path(path)
    here = values
    for key in parents:
        if not isinstance(here.get(key), dict):
            here[key] = {}
        here = here[key]
    here[last] = value


def get(values: Mapping[str, Any], path: str) -> Any:
    """The value at the dotted `path`, or None."""
    here: Any = values
    for key in value_path(path):
        if not isinstance(here, Mapping):
            return None
        here = here.get(key)
    return here
