"""What this app is: its version and the Durable task hub it runs on.

The version comes from `pyproject.toml` (the single source), falling back to
installed package metadata; the hub name comes from `host.json`. Parsing is
pure; only `app_version` and `durable_hub_name` read files.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION_NAME = "release-workflow"
UNKNOWN_VERSION = "0.0.0+unknown"

_HUB_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,44}")
_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


def version_from_pyproject(text: str) -> str | None:
    """Return `project.version` from pyproject text, or None when absent or invalid."""
    try:
        project = tomllib.loads(text).get("project")
    except tomllib.TOMLDecodeError:
        return None
    if not isinstance(project, dict):
        return None
    version = project.get("version")
    if not isinstance(version, str):
        return None
    return version.strip() or None


def hub_name_from_host_json(text: str, environ: Mapping[str, str]) -> str | None:
    """Return the Durable task hub name configured in host.json text, or None.

    A `%SettingName%` value is resolved from `environ`, as the Functions host does.
    None means: not configured, unresolvable, or not a valid hub name.
    """
    try:
        host = json.loads(text)
    except ValueError:
        return None
    durable = _child(_child(host, "extensions"), "durableTask")
    raw = durable.get("hubName")
    if not isinstance(raw, str):
        return None
    reference = _SETTING_REFERENCE.fullmatch(raw.strip())
    name = environ.get(reference.group(1), "") if reference else raw
    return name if is_valid_hub_name(name) else None


def is_valid_hub_name(name: str) -> bool:
    """Whether `name` is a valid task hub name: 3-45 letters/digits, starting with a letter."""
    return _HUB_NAME.fullmatch(name) is not None


def app_version(app_root: Path = APP_ROOT) -> str:
    """The running app's version: pyproject.toml, else installed metadata, else unknown."""
    try:
        version = version_from_pyproject((app_root / "pyproject.toml").read_text("utf-8"))
    except OSError:
        version = None
    if version:
        return version
    try:
        return metadata.version(DISTRIBUTION_NAME)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def durable_hub_name(app_root: Path, environ: Mapping[str, str]) -> str | None:
    """The task hub name from the app's host.json, or None when it sets none."""
    try:
        text = (app_root / "host.json").read_text("utf-8")
    except OSError:
        return None
    return hub_name_from_host_json(text, environ)


def _child(node: object, key: str) -> dict[str, object]:
    """`node[key]` when both are JSON objects, else an empty dict."""
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, dict) else {}
