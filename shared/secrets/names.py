"""Key Vault's name and URL rules and the local settings naming scheme. Pure functions.

Key Vault secret names are 1-127 characters of `[0-9a-zA-Z-]` and case-insensitive.
Locally, the secret `name` of environment `env` lives in the app setting

    SECRETS__<ENV>__<NAME>

with both parts upper-cased and `-` written as `_` (app setting and environment variable
names cannot hold `-`; Key Vault names cannot hold `_`, so the mapping is one-to-one).
`approval-signing-key` of `qa` is `SECRETS__QA__APPROVAL_SIGNING_KEY`. Environment names
are letters and digits in hyphen-separated groups (`qa`, `prod`, `eu-prod`), so the first
`__` after the prefix always ends the environment part.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from shared.failure_kinds import Permanent

LOCAL_SETTING_PREFIX = "SECRETS__"
MAX_NAME_LENGTH = 127
_SECRET_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_ENVIRONMENT_NAME = re.compile(r"[0-9A-Za-z]+(?:-[0-9A-Za-z]+)*")
_ECHO_LIMIT = 40


class InvalidSecretName(Permanent, ValueError):
    """A secret or environment name that Key Vault (or the local scheme) cannot hold.

    The message starts with the field that held it, e.g. `environments.qa.secrets.kubeconfig`.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def check_secret_name(name: object, field: str = "secret name") -> str:
    """Return `name` if it is a valid Key Vault secret name, else raise InvalidSecretName.

    Valid: 1-127 characters, each an ASCII letter, digit or `-` (no `_`, `/`, `.`, spaces
    or non-ASCII letters). `field` names where the value came from, for the message.
    """
    if not isinstance(name, str):
        raise InvalidSecretName(field, f"must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidSecretName(field, "must not be empty (Key Vault names are 1-127 characters"
                                       " of 0-9, a-z, A-Z and -)")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidSecretName(field, f"{_echo(name)} is {len(name)} characters long; Key Vault"
                                       f" allows at most {MAX_NAME_LENGTH}")
    if not _SECRET_NAME.fullmatch(name):
        bad = sorted({char for char in name if not _SECRET_NAME.fullmatch(char)})
        raise InvalidSecretName(field, f"{_echo(name)} contains {_chars(bad)}; Key Vault names"
                                       " may only use 0-9, a-z, A-Z and -")
    return name


def check_environment_name(environment: object, field: str = "environment") -> str:
    """Return `environment` if it can name a local secrets environment, else raise.

    Valid: letters and digits, optionally in groups joined by single hyphens (`qa`, `eu-prod`).
    """
    if not isinstance(environment, str):
        raise InvalidSecretName(field, f"must be a string, not {type(environment).__name__}")
    if not _ENVIRONMENT_NAME.fullmatch(environment):
        raise InvalidSecretName(field, f"{_echo(environment)} is not a valid environment name"
                                       " (letters and digits, groups joined by single hyphens,"
                                       " e.g. qa, prod, eu-prod)")
    return environment


def local_setting_name(environment: str, name: str) -> str:
    """The app setting that holds secret `name` of `environment` locally.

    >>> local_setting_name("qa", "approval-signing-key")
    'SECRETS__QA__APPROVAL_SIGNING_KEY'
    """
    check_environment_name(environment)
    check_secret_name(name)
    return f"{LOCAL_SETTING_PREFIX}{_setting_part(environment)}__{_setting_part(name)}"


def normalize_vault_url(url: object, field: str = "url") -> str:
    """`https://host[:port]` of a vault URL (host lower-cased); ValueError naming `field`."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{field}: must be the vault's URL, e.g. https://qa-kv.vault.azure.net")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"{field}: {url!r} must be an https URL of a vault,"
                         " e.g. https://qa-kv.vault.azure.net")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{field}: {url!r} must be the vault's base URL, with no path"
                         " (e.g. https://qa-kv.vault.azure.net)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{field}: {url!r} has an invalid port") from None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host  # IPv6 literal
    netloc = host if port in (None, 443) else f"{host}:{port}"
    return f"https://{netloc}"


def is_loopback_url(url: str) -> bool:
    """Whether the URL's host is localhost or a loopback address (the local protocol fake)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cache_key(name: str) -> str:
    """The form under which a (case-insensitive) Key Vault name is cached."""
    return name.lower()


def _setting_part(text: str) -> str:
    return text.upper().replace("-", "_")


def _echo(text: str) -> str:
    """`text` quoted for a message, cut short: a name field is never a place for long text."""
    if len(text) > _ECHO_LIMIT:
        return repr(text[:_ECHO_LIMIT]) + "…"
    return repr(text)


def _chars(chars: list[str]) -> str:
    shown = ", ".join(repr(char) for char in chars[:5])
    return shown + (", …" if len(chars) > 5 else "")
