"""Start-up check: app settings that still hold an unresolved `@Microsoft.KeyVault(...)`.

In Azure a Key Vault reference that resolved arrives as the secret's value; one that did
not (missing role, deleted or disabled secret, vault firewall, typo) stays in the setting
as the literal reference text. Such a setting is a configuration error to report loudly at
start-up instead of handing the reference text to a client as if it were a credential.

`unresolved_references` is pure; `log_unresolved_references` is what the app calls at
start-up. Messages name the setting and the reference's target (vault and secret), never
anything else of the setting.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.config_sources import is_key_vault_reference

from .names import InvalidSecretName, check_secret_name

log = logging.getLogger(__name__)

_VAULT_NAME = re.compile(r"[0-9A-Za-z-]{3,24}")
_VERSION = re.compile(r"[0-9A-Za-z]{1,64}")
_SECRET_PATH = re.compile(r"/secrets/([0-9A-Za-z-]{1,127})(?:/([0-9A-Za-z]{1,64}))?/?")


@dataclass(frozen=True)
class SettingProblem:
    """One app setting that is misconfigured, and what to do about it."""

    setting: str
    message: str

    def __str__(self) -> str:
        return self.message


def unresolved_references(environ: Mapping[str, str]) -> list[SettingProblem]:
    """One problem per setting (sorted by name) whose value is a Key Vault reference."""
    problems = []
    for setting in sorted(environ):
        value = environ[setting]
        if not isinstance(value, str) or not is_key_vault_reference(value):
            continue
        target = reference_target(value)
        what = f"to {target}" if target else "(malformed: expected SecretUri=… or VaultName=…;" \
            "SecretName=…)"
        problems.append(SettingProblem(setting, (
            f"app setting {setting} holds an unresolved Key Vault reference {what}; the platform "
            "could not resolve it: check that the app's managed identity has the Key Vault "
            "Secrets User role on the vault, that the secret exists and is enabled, and that "
            "the vault's network rules admit the app (locally, references are never resolved: "
            "put the value itself, or use the SECRETS__<ENV>__<NAME> settings)"
        )))
    return problems


def reference_target(value: str) -> str | None:
    """The vault and secret a reference points to, as text safe to log; None if malformed.

    `@Microsoft.KeyVault(SecretUri=https://qa-kv.vault.azure.net/secrets/kubeconfig/)` gives
    `https://qa-kv.vault.azure.net/secrets/kubeconfig`;
    `@Microsoft.KeyVault(VaultName=qa-kv;SecretName=kubeconfig)` gives
    `vault qa-kv, secret kubeconfig`. Only parts that match Key Vault's rules are echoed.
    """
    if not is_key_vault_reference(value):
        return None
    inner = value.strip()[len("@Microsoft.KeyVault("):-1]
    fields: dict[str, str] = {}
    for part in inner.split(";"):
        key, sep, item = part.partition("=")
        if not sep:
            return None
        fields[key.strip().lower()] = item.strip()
    if "secreturi" in fields:
        return _uri_target(fields["secreturi"])
    vault, name = fields.get("vaultname", ""), fields.get("secretname", "")
    version = fields.get("secretversion")
    if not _VAULT_NAME.fullmatch(vault) or not _is_secret_name(name):
        return None
    if version is not None and not _VERSION.fullmatch(version):
        return None
    return f"vault {vault}, secret {name}" + (f", version {version}" if version else "")


def log_unresolved_references(
    environ: Mapping[str, str] | None = None, logger: logging.Logger | None = None
) -> list[SettingProblem]:
    """Log an error per unresolved reference in `environ` (`os.environ`); return them."""
    problems = unresolved_references(os.environ if environ is None else environ)
    for problem in problems:
        (logger or log).error("configuration error: %s", problem.message)
    return problems


def _uri_target(uri: str) -> str | None:
    parts = urlsplit(uri)
    match = _SECRET_PATH.fullmatch(parts.path)
    if parts.scheme.lower() != "https" or not parts.hostname or match is None:
        return None
    if not re.fullmatch(r"[0-9A-Za-z.-]+(?::\d+)?", parts.netloc):
        return None
    name, version = match.groups()
    return f"https://{parts.netloc}/secrets/{name}" + (f"/{version}" if version else "")


def _is_secret_name(name: str) -> bool:
    try:
        check_secret_name(name)
    except InvalidSecretName:
        return False
    return True
