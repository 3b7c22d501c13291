"""Approval settings of the app: the signing keyring, where links point, how approvers sign in.

Reads app settings only (in Azure they may be Key Vault references, resolved by App Service):
`APPROVAL_SIGNING_KEY` (signs), `APPROVAL_SIGNING_KEY_PREVIOUS` (still verifies after a
rotation), `APPROVAL_BASE_URL` (else `https://$WEBSITE_HOSTNAME`) and `APPROVAL_IDENTITY`.
Errors name the setting, never its value. Does not sign or verify: see tokens.py.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Final, Literal
from urllib.parse import urlsplit

from shared.approvals.tokens import MIN_KEY_BYTES, Keyring

KEY_SETTING: Final = "APPROVAL_SIGNING_KEY"
PREVIOUS_KEY_SETTING: Final = "APPROVAL_SIGNING_KEY_PREVIOUS"
BASE_URL_SETTING: Final = "APPROVAL_BASE_URL"
IDENTITY_SETTING: Final = "APPROVAL_IDENTITY"
IdentityMode = Literal["token", "appservice"]
IDENTITY_MODES: Final = ("token", "appservice")


class ApprovalConfigError(ValueError):
    """An approval setting is missing or unusable; the message names the setting."""


def key_id(secret: bytes) -> str:
    """A key's public id: the first 8 hex digits of its SHA-256 (reveals nothing usable)."""
    return hashlib.sha256(secret).hexdigest()[:8]


def app_keyring(settings: Mapping[str, str] | None = None) -> Keyring:
    """The current key (primary) and, when set, the previous one."""
    settings = os.environ if settings is None else settings
    current = _key(settings, KEY_SETTING, required=True)
    assert current is not None
    keys = {key_id(current): current}
    previous = _key(settings, PREVIOUS_KEY_SETTING, required=False)
    if previous is not None:
        keys.setdefault(key_id(previous), previous)
    return Keyring(keys, primary=key_id(current))


def base_url(settings: Mapping[str, str] | None = None) -> str:
    """Where approval links point: `APPROVAL_BASE_URL`, else the app's Azure host name."""
    settings = os.environ if settings is None else settings
    url = (settings.get(BASE_URL_SETTING) or "").strip()
    if not url:
        host = (settings.get("WEBSITE_HOSTNAME") or "").strip()
        if not host:
            raise ApprovalConfigError(f"{BASE_URL_SETTING} is not set (nor WEBSITE_HOSTNAME):"
                                      " approval links need the app's public address")
        url = f"https://{host}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
            or parts.fragment:
        raise ApprovalConfigError(f"{BASE_URL_SETTING} must be an http(s) address such as"
                                  " https://release.example.com, without query or fragment")
    return url.rstrip("/")


def identity_mode(settings: Mapping[str, str] | None = None) -> IdentityMode:
    """`appservice` (sign-in headers) or `token` (the approver named in the link)."""
    settings = os.environ if settings is None else settings
    mode = (settings.get(IDENTITY_SETTING) or "").strip().lower()
    if not mode:
        enabled = (settings.get("WEBSITE_AUTH_ENABLED") or "").strip().lower() == "true"
        return "appservice" if enabled else "token"
    if mode not in IDENTITY_MODES:
        raise ApprovalConfigError(f"{IDENTITY_SETTING} must be one of"
                                  f" {', '.join(IDENTITY_MODES)}")
    return mode  # type: ignore[return-value]


def _key(settings: Mapping[str, str], name: str, *, required: bool) -> bytes | None:
    value = (settings.get(name) or "").strip()
    if not value:
        if required:
            raise ApprovalConfigError(f"{name} is not set: approval links cannot be signed"
                                      " (generate one with `openssl rand -base64 48`)")
        return None
    if value.lower().startswith("@microsoft.keyvault("):
        raise ApprovalConfigError(f"{name} still holds an unresolved Key Vault reference:"
                                  " check the app's identity can read the secret")
    secret = value.encode()
    if len(secret) < MIN_KEY_BYTES:
        raise ApprovalConfigError(f"{name} is too short: use at least {MIN_KEY_BYTES}"
                                  " random characters (`openssl rand -base64 48`)")
    return secret
