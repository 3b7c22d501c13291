"""Approval settings of the app: the signing keyring, where links point, how approvers sign in.

Reads app settings only (in Azure they may be Key Vault references, resolved by App Service):
`APPROVAL_SIGNING_KEY` (signs), `APPROVAL_SIGNING_KEY_PREVIOUS` (still verifies after a
rotation), `APPROVAL_BASE_URL` (else `https://$WEBSITE_HOSTNAME`), `APPROVAL_IDENTITY`, and
`WEBSITE_AUTH_ENABLED` (App Service Authentication: the only reason to trust sign-in headers).
`problems` lists everything a gate would trip over, for the start-up log, `/api/health` and a
release's check before its first environment. Errors name the setting, never its value.
Does not sign or verify: see tokens.py.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from shared.approvals.tokens import MIN_KEY_BYTES, Keyring
from shared.failure_kinds import Permanent
from shared.policy.model import Gate
from shared.secrets.references import SettingProblem

KEY_SETTING: Final = "APPROVAL_SIGNING_KEY"
PREVIOUS_KEY_SETTING: Final = "APPROVAL_SIGNING_KEY_PREVIOUS"
BASE_URL_SETTING: Final = "APPROVAL_BASE_URL"
IDENTITY_SETTING: Final = "APPROVAL_IDENTITY"
AUTH_SETTING: Final = "WEBSITE_AUTH_ENABLED"
IdentityMode = Literal["token", "appservice"]
IDENTITY_MODES: Final = ("token", "appservice")


class ApprovalConfigError(Permanent, ValueError):
    """An approval setting is missing or unusable; the message names the setting."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


class SignInNotEnforced(ApprovalConfigError):
    """`APPROVAL_IDENTITY=appservice` without App Service Authentication: anyone could send
    the sign-in headers, so nobody is taken from them."""


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
            raise ApprovalConfigError(BASE_URL_SETTING, f"{BASE_URL_SETTING} is not set (nor"
                                      " WEBSITE_HOSTNAME): approval links need the app's"
                                      " public address")
        url = f"https://{host}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
            or parts.fragment:
        raise ApprovalConfigError(BASE_URL_SETTING, f"{BASE_URL_SETTING} must be an http(s)"
                                  " address such as https://release.example.com, without query"
                                  " or fragment")
    return url.rstrip("/")


def app_service_auth(settings: Mapping[str, str] | None = None) -> bool:
    """Whether App Service Authentication is on (`WEBSITE_AUTH_ENABLED` is `true`): only then
    does App Service strip `X-MS-CLIENT-PRINCIPAL*` from requests and set them itself."""
    settings = os.environ if settings is None else settings
    return (settings.get(AUTH_SETTING) or "").strip().lower() == "true"


def identity_mode(settings: Mapping[str, str] | None = None) -> IdentityMode:
    """`appservice` (sign-in headers) or `token` (the approver named in the link).

    `appservice` without App Service Authentication is refused (SignInNotEnforced)."""
    settings = os.environ if settings is None else settings
    mode = (settings.get(IDENTITY_SETTING) or "").strip().lower()
    enabled = app_service_auth(settings)
    if not mode:
        return "appservice" if enabled else "token"
    if mode == "token":
        return "token"
    if mode != "appservice":
        raise ApprovalConfigError(IDENTITY_SETTING, f"{IDENTITY_SETTING} must be one of"
                                  f" {', '.join(IDENTITY_MODES)}")
    if not enabled:
        raise SignInNotEnforced(IDENTITY_SETTING, (
            f"{IDENTITY_SETTING} is appservice but App Service Authentication is off"
            f" ({AUTH_SETTING} is not true), so anyone could send the sign-in headers: turn"
            f" on App Service Authentication, or set {IDENTITY_SETTING}=token"))
    return "appservice"


def problems(settings: Mapping[str, str] | None = None,
             gates: Mapping[str, Gate] | None = None) -> list[SettingProblem]:
    """What keeps gates from opening or deciding; each problem names its setting, never a value.

    `gates` (label such as `delivery/prod` → gate) are the gates to open: with none
    (`{}`) only the sign-in setting matters; unknown gates (None) get every setting checked
    but nothing a particular gate needs."""
    settings = os.environ if settings is None else settings
    found: list[SettingProblem] = []

    def check(step: Any) -> Any:
        try:
            return step(settings)
        except ApprovalConfigError as error:
            found.append(SettingProblem(error.setting, str(error)))
            return None

    mode = check(identity_mode)
    if gates is not None and not gates:
        return found
    check(app_keyring)
    check(base_url)
    if mode == "token":
        for label, gate in (gates or {}).items():
            check(lambda _settings, label=label, gate=gate: named_approvers(label, gate))
    return found


def named_approvers(label: str, gate: Gate) -> list[str]:
    """The gate's users, who get personal links in `token` mode; ApprovalConfigError when
    it names only groups (without a sign-in nobody can tell their members apart)."""
    users = [u.strip() for u in gate.users if u.strip()]
    if not users:
        raise ApprovalConfigError(IDENTITY_SETTING, (
            f"the gate of {label} names only groups, and without App Service Authentication"
            " a link must name its approver: list users in the gate, or turn on App Service"
            f" Authentication ({IDENTITY_SETTING}=appservice)"))
    return users


def _key(settings: Mapping[str, str], name: str, *, required: bool) -> bytes | None:
    value = (settings.get(name) or "").strip()
    if not value:
        if required:
            raise ApprovalConfigError(name, f"{name} is not set: approval links cannot be"
                                      " signed (generate one with `openssl rand -base64 48`)")
        return None
    if value.lower().startswith("@microsoft.keyvault("):
        raise ApprovalConfigError(name, f"{name} still holds an unresolved Key Vault"
                                  " reference: check the app's identity can read the secret")
    secret = value.encode()
    if len(secret) < MIN_KEY_BYTES:
        raise ApprovalConfigError(name, f"{name} is too short: use at least {MIN_KEY_BYTES}"
                                  " random characters (`openssl rand -base64 48`)")
    return secret
