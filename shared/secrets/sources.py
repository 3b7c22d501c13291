"""Which secret source an environment uses: parsed from the release policy, cached per process.

An environment's `secrets` spec is one of

    {"keyVault": {"url": "https://qa-kv.vault.azure.net", "managedIdentityClientId": null}}
    {"local": {"environment": "qa"}}

`keyVault` reads the vault with `DefaultAzureCredential` (the app's managed identity in
Azure; `managedIdentityClientId` picks a user-assigned one). `caBundle` (a CA file path)
is accepted for local stacks that serve a vault over a private CA. `local` reads the
`SECRETS__<ENV>__<NAME>` app settings (see `names.py`). `for_spec` returns the same source
for the same spec for the life of the process: one client and one cache per vault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from azure.identity import DefaultAzureCredential

from .base import SecretSource
from .errors import InvalidSecretSpec
from .keyvault import KeyVaultSource
from .local import LocalSource
from .names import InvalidSecretName, check_environment_name, normalize_vault_url

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_KEY_VAULT_FIELDS = {"url", "managedIdentityClientId", "caBundle"}


@dataclass(frozen=True)
class KeyVaultSpec:
    """Secrets from one vault, read as the app's (optionally user-assigned) identity."""

    url: str
    managed_identity_client_id: str | None = None
    ca_bundle: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"url": self.url,
                                "managedIdentityClientId": self.managed_identity_client_id}
        if self.ca_bundle:
            data["caBundle"] = self.ca_bundle
        return {"keyVault": data}


@dataclass(frozen=True)
class LocalSpec:
    """Secrets from the app settings of one environment's naming scheme."""

    environment: str

    def to_dict(self) -> dict[str, Any]:
        return {"local": {"environment": self.environment}}


SourceSpec = KeyVaultSpec | LocalSpec


def parse_spec(spec: object, field: str = "secrets") -> SourceSpec:
    """Validate a secrets spec; InvalidSecretSpec names the offending field under `field`."""
    if not isinstance(spec, Mapping):
        raise InvalidSecretSpec(field, "must be an object with 'keyVault' or 'local'")
    kinds = [kind for kind in ("keyVault", "local") if kind in spec]
    unknown = sorted(set(spec) - {"keyVault", "local"})
    if unknown:
        raise InvalidSecretSpec(f"{field}.{unknown[0]}", "unknown field (expected 'keyVault' "
                                                         "or 'local')")
    if len(kinds) != 1:
        raise InvalidSecretSpec(field, "must have exactly one of 'keyVault' or 'local'")
    kind = kinds[0]
    body = spec[kind]
    where = f"{field}.{kind}"
    if not isinstance(body, Mapping):
        raise InvalidSecretSpec(where, "must be an object")
    if kind == "local":
        return _parse_local(body, where)
    return _parse_key_vault(body, where)


def for_spec(spec: Mapping[str, Any] | SourceSpec) -> SecretSource:
    """The process-wide source for `spec` (a policy dict or a parsed spec)."""
    parsed = spec if isinstance(spec, KeyVaultSpec | LocalSpec) else parse_spec(spec)
    return _source_for(parsed)


def clear_sources() -> None:
    """Forget every cached source, client and credential (tests; a policy reload)."""
    _source_for.cache_clear()
    _credential.cache_clear()


@lru_cache(maxsize=32)
def _source_for(spec: SourceSpec) -> SecretSource:
    if isinstance(spec, LocalSpec):
        return LocalSource(spec.environment)
    return KeyVaultSource(spec.url, _credential(spec.managed_identity_client_id),
                          ca_bundle=spec.ca_bundle)


@lru_cache(maxsize=8)
def _credential(managed_identity_client_id: str | None) -> DefaultAzureCredential:
    if managed_identity_client_id:
        return DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)
    return DefaultAzureCredential()


def _parse_local(body: Mapping[str, Any], where: str) -> LocalSpec:
    unknown = sorted(set(body) - {"environment"})
    if unknown:
        raise InvalidSecretSpec(f"{where}.{unknown[0]}", "unknown field (expected 'environment')")
    try:
        return LocalSpec(check_environment_name(body.get("environment"), f"{where}.environment"))
    except InvalidSecretName as error:
        raise InvalidSecretSpec(error.field, error.reason) from None


def _parse_key_vault(body: Mapping[str, Any], where: str) -> KeyVaultSpec:
    unknown = sorted(set(body) - _KEY_VAULT_FIELDS)
    if unknown:
        raise InvalidSecretSpec(f"{where}.{unknown[0]}", "unknown field (expected url, "
                                "managedIdentityClientId, caBundle)")
    try:
        url = normalize_vault_url(body.get("url"), f"{where}.url")
    except ValueError as error:
        field, _, reason = str(error).partition(": ")
        raise InvalidSecretSpec(field, reason) from None
    client_id = body.get("managedIdentityClientId")
    if client_id is not None and (not isinstance(client_id, str) or not _GUID.fullmatch(client_id)):
        raise InvalidSecretSpec(f"{where}.managedIdentityClientId", "must be null or the client"
                                " id (a GUID) of a user-assigned managed identity")
    ca_bundle = body.get("caBundle")
    if ca_bundle is not None and (not isinstance(ca_bundle, str) or not ca_bundle.strip()):
        raise InvalidSecretSpec(f"{where}.caBundle", "must be null or the path of a CA file")
    return KeyVaultSpec(url, client_id.lower() if client_id else None, ca_bundle or None)
