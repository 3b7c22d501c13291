"""Which configuration sources feed this app: names only, never values.

Reports whether `local.settings.json` is present, which known settings come
from the environment, which of them still hold a Key Vault reference, whether
a release policy file is configured, and which settings fall back to the
embedded defaults. The rules are pure functions;
`detect_sources` is the only one that touches the file system.

In Azure, a Key Vault reference that resolved arrives as the secret's value,
so a visible `@Microsoft.KeyVault(...)` in the environment means resolution
failed; in `local.settings.json` such references are never resolved locally.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

LOCAL_SETTINGS_FILE = "local.settings.json"
POLICY_FILE_SETTING = "RELEASE_POLICY_FILE"
KEY_VAULT_REFERENCE_PREFIX = "@microsoft.keyvault("
DEFAULTS = "embedded-defaults"  # settings no source provides fall back to built-in values

# Every app setting this app (or its host) reads; listed in local.settings.sample.json.
KNOWN_SETTINGS: tuple[str, ...] = (
    "AzureWebJobsStorage",
    "FUNCTIONS_WORKER_RUNTIME",
    POLICY_FILE_SETTING,
    "REGISTRY_WEBHOOK_TOKEN",
    "LEDGER_TABLE_PREFIX",
    "RECONCILE_MAX_IMAGES",
    "RECONCILE_SCHEDULE",
    "APPROVAL_SIGNING_KEY",
    "APPROVAL_SIGNING_KEY_PREVIOUS",
    "APPROVAL_BASE_URL",
    "APPROVAL_IDENTITY",
)


@dataclass(frozen=True)
class ConfigSource:
    """One active configuration source and the names of the settings it provides."""

    name: str
    settings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form for HTTP responses."""
        return {"name": self.name, "settings": list(self.settings)}


def is_key_vault_reference(value: str) -> bool:
    """Whether a setting value is an App Service Key Vault reference."""
    text = value.strip()
    return text.lower().startswith(KEY_VAULT_REFERENCE_PREFIX) and text.endswith(")")


def parse_local_settings(text: str) -> dict[str, str]:
    """Return the `Values` of a local.settings.json text.

    Raises ValueError with a one-line reason when the text is not the expected shape.
    """
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{LOCAL_SETTINGS_FILE}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{LOCAL_SETTINGS_FILE}: top level must be an object")
    values = document.get("Values", {})
    if not isinstance(values, dict):
        raise ValueError(f"{LOCAL_SETTINGS_FILE}: 'Values' must be an object")
    return {str(name): value for name, value in values.items() if isinstance(value, str)}


def active_sources(
    environ: Mapping[str, str],
    local_settings: Mapping[str, str] | None,
    policy_file_exists: bool,
    known: Iterable[str] = KNOWN_SETTINGS,
) -> list[ConfigSource]:
    """The active configuration sources, in a fixed order, naming settings but no values.

    `local_settings` is None when no local.settings.json is present; the policy
    file counts only when its setting is non-empty and the file exists.
    """
    known = tuple(known)
    sources: list[ConfigSource] = []
    if local_settings is not None:
        sources.append(ConfigSource(LOCAL_SETTINGS_FILE, _present(known, local_settings)))
    from_environment = _present(known, environ)
    if from_environment:
        sources.append(ConfigSource("environment", from_environment))
    references = tuple(
        name
        for name in known
        if is_key_vault_reference(environ.get(name, ""))
        or is_key_vault_reference((local_settings or {}).get(name, ""))
    )
    if references:
        sources.append(ConfigSource("key-vault-references", references))
    if policy_file_exists and policy_file_setting(environ, local_settings):
        sources.append(ConfigSource("policy-file", (POLICY_FILE_SETTING,)))
    configured = set(from_environment) | set(_present(known, local_settings or {}))
    defaults = tuple(name for name in known if name not in configured)
    if defaults:
        sources.append(ConfigSource(DEFAULTS, defaults))
    return sources


def policy_file_setting(
    environ: Mapping[str, str], local_settings: Mapping[str, str] | None
) -> str:
    """The configured policy file path (environment wins over local settings), or ''."""
    value = environ.get(POLICY_FILE_SETTING) or (local_settings or {}).get(POLICY_FILE_SETTING)
    return (value or "").strip()


def detect_sources(app_root: Path, environ: Mapping[str, str]) -> list[ConfigSource]:
    """Inspect the app folder and environment and return the active sources.

    An unreadable or malformed local.settings.json still counts as present, with no settings.
    """
    local_path = app_root / LOCAL_SETTINGS_FILE
    local_settings: dict[str, str] | None = None
    if local_path.is_file():
        try:
            local_settings = parse_local_settings(local_path.read_text("utf-8"))
        except (OSError, ValueError):
            local_settings = {}
    policy = policy_file_setting(environ, local_settings)
    policy_exists = bool(policy) and (app_root / policy).is_file()
    return active_sources(environ, local_settings, policy_exists)


def _present(known: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    """Names from `known` that have a non-empty value in `values`, in `known` order."""
    return tuple(name for name in known if (values.get(name) or "").strip())
