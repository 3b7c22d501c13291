"""host.json and local.settings.json, read the way the Functions host reads them.

Only the settings devhost acts on are parsed: the HTTP route prefix and the
Durable Task hub name, concurrency limits and orchestration versioning. An app
setting `AzureFunctionsJobHost__extensions__durableTask__<name>` overrides the
versioning settings, as it overrides host.json in the Functions host. Does not
decrypt encrypted local settings and does not read ConnectionStrings.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.durable.versioning import FailureStrategy, MatchStrategy, VersionPolicy

DEFAULT_HUB_NAME = "TestHubName"
DEFAULT_ROUTE_PREFIX = "api"
DEFAULT_MAX_CONCURRENCY = 10
OVERRIDE_PREFIX = "AzureFunctionsJobHost__extensions__durableTask__"


class SettingsError(Exception):
    """host.json or local.settings.json cannot be used as written."""


@dataclass(frozen=True)
class HostSettings:
    """What devhost takes from host.json."""

    route_prefix: str = DEFAULT_ROUTE_PREFIX
    hub_name: str = DEFAULT_HUB_NAME
    max_activities: int = DEFAULT_MAX_CONCURRENCY
    max_orchestrators: int = DEFAULT_MAX_CONCURRENCY
    versioning: VersionPolicy = VersionPolicy()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise SettingsError(f"{path}: invalid JSON: {error}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a JSON object at the top level")
    return data


def _section(data: dict[str, Any], path: Path, *keys: str) -> dict[str, Any]:
    node: Any = data
    for key in keys:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    if not isinstance(node, dict):
        raise SettingsError(f"{path}: {'.'.join(keys)} must be an object")
    return node


def _positive_int(value: Any, default: int, path: Path, name: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{path}: {name} must be a positive integer, got {value!r}")
    return value


def _choice(value: Any, kind: type[MatchStrategy] | type[FailureStrategy], where: str,
            name: str) -> Any:
    """An enum member named by `value`, matched ignoring case as the host's binder does."""
    for member in kind:
        if isinstance(value, str) and value.strip().lower() == member.value.lower():
            return member
    allowed = ", ".join(m.value for m in kind)
    raise SettingsError(f"{where}: {name} must be one of {allowed}, got {value!r}")


def _versioning(durable: dict[str, Any], path: Path) -> VersionPolicy:
    """`defaultVersion`, `versionMatchStrategy`, `versionFailureStrategy`, app settings first."""
    values: dict[str, tuple[Any, str]] = {}
    for key in ("defaultVersion", "versionMatchStrategy", "versionFailureStrategy"):
        if key in durable:
            values[key] = (durable[key], str(path))
    for name, value in os.environ.items():
        if name.lower().startswith(OVERRIDE_PREFIX.lower()):
            key = name[len(OVERRIDE_PREFIX):]
            for known in ("defaultVersion", "versionMatchStrategy", "versionFailureStrategy"):
                if key.lower() == known.lower():
                    values[known] = (value, f"app setting {name}")
    version, where = values.get("defaultVersion", (None, str(path)))
    if version is not None and not isinstance(version, str):
        raise SettingsError(f"{where}: extensions.durableTask.defaultVersion must be a string "
                            f"or null, got {version!r}")
    match = MatchStrategy.CURRENT_OR_OLDER
    if "versionMatchStrategy" in values:
        value, where = values["versionMatchStrategy"]
        match = _choice(value, MatchStrategy, where, "extensions.durableTask.versionMatchStrategy")
    failure = FailureStrategy.REJECT
    if "versionFailureStrategy" in values:
        value, where = values["versionFailureStrategy"]
        failure = _choice(value, FailureStrategy, where,
                          "extensions.durableTask.versionFailureStrategy")
    return VersionPolicy(default_version=version or None, match=match, failure=failure)


def load_host_settings(app_dir: Path) -> HostSettings:
    """Read `app_dir/host.json`; a missing file means all defaults."""
    path = app_dir / "host.json"
    data = _read_json(path) if path.is_file() else {}
    http = _section(data, path, "extensions", "http")
    durable = _section(data, path, "extensions", "durableTask")
    prefix = http.get("routePrefix", DEFAULT_ROUTE_PREFIX)
    if not isinstance(prefix, str):
        raise SettingsError(f"{path}: extensions.http.routePrefix must be a string")
    hub = durable.get("hubName", DEFAULT_HUB_NAME)
    if not isinstance(hub, str) or not hub:
        raise SettingsError(f"{path}: extensions.durableTask.hubName must be a non-empty string")
    return HostSettings(
        route_prefix=prefix.strip("/"),
        hub_name=hub,
        max_activities=_positive_int(
            durable.get("maxConcurrentActivityFunctions"), DEFAULT_MAX_CONCURRENCY,
            path, "extensions.durableTask.maxConcurrentActivityFunctions"),
        max_orchestrators=_positive_int(
            durable.get("maxConcurrentOrchestratorFunctions"), DEFAULT_MAX_CONCURRENCY,
            path, "extensions.durableTask.maxConcurrentOrchestratorFunctions"),
        versioning=_versioning(durable, path),
    )


def load_local_values(app_dir: Path) -> dict[str, str]:
    """The `Values` of `app_dir/local.settings.json` as strings; {} if there is no file."""
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return {}
    data = _read_json(path)
    if data.get("IsEncrypted"):
        raise SettingsError(f"{path}: encrypted local settings are not supported; "
                            "decrypt them with `func settings decrypt`")
    values = data.get("Values", {})
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: Values must be an object")
    return {str(key): value if isinstance(value, str) else json.dumps(value)
            for key, value in values.items() if value is not None}


def apply_values(values: dict[str, str],
                 environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set each value not already in the environment; return the names that were set."""
    env = os.environ if environ is None else environ
    applied = [name for name in values if name not in env]
    for name in applied:
        env[name] = values[name]
    return applied
