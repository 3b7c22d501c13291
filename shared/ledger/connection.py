"""Where the ledger's storage is: app settings and connection strings, without I/O.

`AzureWebJobsStorage` holds a connection string; `UseDevelopmentStorage=true` (optionally
with `DevelopmentStorageProxyUri`) is expanded here to the explicit Azurite account on its
default ports. Identity-based connections (`AzureWebJobsStorage__accountName` or
`__tableServiceUri`, optional `__clientId`) give an endpoint to use with an Entra credential.
Nothing here logs or returns a key in an error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import LedgerError

STORAGE_SETTING = "AzureWebJobsStorage"
PREFIX_SETTING = "LEDGER_TABLE_PREFIX"
DEFAULT_PREFIX = "release"
DEV_ACCOUNT_NAME = "devstoreaccount1"
# The documented development key that every Azurite accepts; not a secret.
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_PORTS = {"Blob": 10000, "Queue": 10001, "Table": 10002}
TABLE_SUFFIXES = ("Events", "Digests", "Releases", "Environments")
PREFIX_RULE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,50}")


@dataclass(frozen=True)
class StorageTarget:
    """Either a connection string, or a table endpoint reached with an Entra identity."""

    connection_string: str | None = None
    table_endpoint: str | None = None
    client_id: str | None = None


def parse_connection_string(connection_string: str) -> dict[str, str]:
    """`Key=Value;…` pairs (keys as written); values may contain `=`."""
    pairs: dict[str, str] = {}
    for part in connection_string.strip().split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise LedgerError("storage connection string is malformed: expected Key=Value pairs")
        pairs[key.strip()] = value.strip()
    return pairs


def development_storage(proxy_uri: str | None = None) -> str:
    """The explicit Azurite account string for `UseDevelopmentStorage=true` (default ports)."""
    scheme, host = "http", "127.0.0.1"
    if proxy_uri:
        parts = urlsplit(proxy_uri)
        if not parts.scheme or not parts.hostname:
            raise LedgerError("DevelopmentStorageProxyUri must be an absolute URI like http://host")
        scheme, host = parts.scheme, parts.hostname
    endpoints = ";".join(
        f"{kind}Endpoint={scheme}://{host}:{port}/{DEV_ACCOUNT_NAME}"
        for kind, port in DEV_PORTS.items()
    )
    return (
        f"DefaultEndpointsProtocol={scheme};AccountName={DEV_ACCOUNT_NAME};"
        f"AccountKey={DEV_ACCOUNT_KEY};{endpoints}"
    )


def expand_connection_string(connection_string: str) -> str:
    """The string itself, or the explicit Azurite string if it asks for development storage."""
    if not connection_string or not connection_string.strip():
        raise LedgerError("storage connection string is empty")
    pairs = {key.lower(): value
             for key, value in parse_connection_string(connection_string).items()}
    if pairs.get("usedevelopmentstorage", "").lower() == "true":
        return development_storage(pairs.get("developmentstorageproxyuri"))
    return connection_string.strip()


def storage_target(settings: Mapping[str, str]) -> StorageTarget:
    """Where `AzureWebJobsStorage` (or its identity-based `__` settings) points."""
    connection_string = settings.get(STORAGE_SETTING, "").strip()
    if connection_string:
        return StorageTarget(connection_string=expand_connection_string(connection_string))
    table_uri = settings.get(f"{STORAGE_SETTING}__tableServiceUri", "").strip()
    account = settings.get(f"{STORAGE_SETTING}__accountName", "").strip()
    client_id = settings.get(f"{STORAGE_SETTING}__clientId", "").strip() or None
    if table_uri:
        return StorageTarget(table_endpoint=table_uri.rstrip("/"), client_id=client_id)
    if account:
        return StorageTarget(
            table_endpoint=f"https://{account}.table.core.windows.net", client_id=client_id
        )
    raise LedgerError(
        f"app setting {STORAGE_SETTING} is not set (nor {STORAGE_SETTING}__accountName or "
        f"{STORAGE_SETTING}__tableServiceUri for an identity-based connection)"
    )


def table_prefix(settings: Mapping[str, str]) -> str:
    """`LEDGER_TABLE_PREFIX`, or `release`."""
    return check_prefix(settings.get(PREFIX_SETTING, "").strip() or DEFAULT_PREFIX)


def check_prefix(prefix: str) -> str:
    """A prefix that makes valid table names: a letter, then letters/digits, up to 51 chars."""
    if not PREFIX_RULE.fullmatch(prefix):
        raise LedgerError(
            f"ledger table prefix {prefix!r} is invalid: Azure table names are a letter followed "
            "by letters or digits (prefix at most 51 characters)"
        )
    return prefix


def public_endpoint(url: str) -> str:
    """scheme://host[:port]/path of an endpoint, without any query (a SAS token lives there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}".rstrip("/")
