"""host.json and local.settings.json, read the way the Functions host reads them.

Only the settings devhost acts on are parsed: the HTTP route prefix and the
Durable Task hub name and concurrency limits. Does not decrypt encrypted
local settings and does not read ConnectionStrings.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HUB_NAME = "TestHubName"
DEFAULT_ROUTE_PREFIX = "api"
DEFAULT_MAX_CONCURRENCY = 10


class SettingsError(Exception):
    """host.json or local.settings.json cannot be used as written."""


@dataclass(frozen=True)
class HostSettings:
    """What devhost takes from host.json."""

    route_prefix: str = DEFAULT_ROUTE_PREFIX
    hub_name: str = DEFAULT_HUB_NAME
    max_activities: int = DEFAULT_MAX_CONCURRENCY
    max_orchestrators: int = DEFAULT_MAX_CONCURRENCY


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


def load_host_settings(app_dir: Path) -> HostSettings:
    """Read `app_dir/host.json`; a missing file means all defaults."""
    path = app_dir / "host.json"
    if not path.is_file():
        return HostSettings()
    data = _read_json(path)
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
