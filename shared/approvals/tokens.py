"""Signed approval links: HMAC-SHA256 tokens bound to one release, environment and image digest.

A token is `base64url(JSON payload) "." base64url(HMAC-SHA256(key, prefix + payload part))`,
signed with the keyring's primary key and accepted under any active key, so a key can be
rotated without breaking links already sent. Pure: no I/O; the clock (`now`) and the nonce
are inputs. Does not enforce single use: the caller records `Grant.nonce` when it acts on a
decision and refuses a nonce it has already seen. Does not read keys from Key Vault.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from shared.json_input import read_json

Scope = Literal["approve", "reject", "decide"]
Decision = Literal["approve", "reject"]

SCOPES: Final = ("approve", "reject", "decide")
DECISIONS: Final = ("approve", "reject")
MAX_TOKEN_LENGTH: Final = 2048
"""Longer input is refused before any decoding."""
MIN_KEY_BYTES: Final = 32

_VERSION: Final = 1
_MAC_PREFIX: Final = b"release-approval-link.v1."
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_INVALID: Final = ("approval link is not valid: it is malformed, was altered, or was signed"
                   " with a key that is no longer active; ask for a new link")


class TokenError(Exception):
    """An approval link that cannot be used; the message is safe to show the person."""


class TokenInvalid(TokenError):
    """Malformed, altered, or signed with an unknown key: one message for all, so nothing leaks."""

    def __init__(self) -> None:
        super().__init__(_INVALID)


class TokenExpired(TokenError):
    """The link's deadline has passed (a link is expired at exactly its expiry time)."""


class TokenMismatch(TokenError):
    """The link is genuine but bound to another release, environment or image digest."""


class TokenScope(TokenError):
    """The link may not make this decision (e.g. a reject-only link used to approve)."""


@dataclass(frozen=True)
class Keyring:
    """Active signing keys by id; `primary` signs, every key verifies. Secrets never shown."""

    keys: Mapping[str, bytes] = field(repr=False)
    primary: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("approval keyring is empty: configure at least one signing key")
        for key_id, secret in self.keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise ValueError(f"approval key id {key_id!r} is not 1-32 of [A-Za-z0-9_-]")
            if not isinstance(secret, bytes) or len(secret) < MIN_KEY_BYTES:
                raise ValueError(f"approval key {key_id!r} must be at least {MIN_KEY_BYTES}"
                                 " random bytes")
        if self.primary not in self.keys:
            raise ValueError(f"primary approval key {self.primary!r} is not in the keyring"
                             f" (active: {', '.join(sorted(self.keys))})")
        object.__setattr__(self, "keys", dict(self.keys))


@dataclass(frozen=True)
class Grant:
    """What a verified link allows; record `nonce` to make the link single-use."""

    release_id: str
    environment: str
    digest: str
    scope: Scope
    expires_at: datetime
    nonce: str
    key_id: str
    approver: str | None = None

    def allows(self, decision: str) -> bool:
        """Whether this link's scope covers `decision` (`approve` or `reject`)."""
        return self.scope == "decide" or self.scope == decision


def new_nonce() -> str:
    """A fresh random nonce for `issue` (URL-safe, 128 bits)."""
    return secrets.token_urlsafe(16)


def issue(keyring: Keyring, *, release_id: str, environment: str, digest: str, scope: str,
          expires_at: datetime, nonce: str, approver: str | None = None) -> str:
    """A signed link token; `expires_at` (timezone-aware) is kept to the whole second, floored.

    `approver` names the one person the link is for (runs without App Service Authentication).
    """
    _require_text("release_id", release_id)
    _require_text("environment", environment)
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ValueError(f"digest {digest!r} is not an image digest such as sha256:<hex>")
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be 16-128 of [A-Za-z0-9_-]; use new_nonce()")
    if approver is not None:
        _require_text("approver", approver)
    expiry = int(_epoch_seconds("expires_at", expires_at) // 1)
    payload = {"v": _VERSION, "kid": keyring.primary, "rel": release_id, "env": environment,
               "dig": digest, "scp": scope, "exp": expiry, "n": nonce}
    if approver is not None:
        payload["apr"] = approver.strip()
    body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    token = f"{body}.{_b64encode(_mac(keyring.keys[keyring.primary], body))}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"approval token would be {len(token)} characters, over the"
                         f" {MAX_TOKEN_LENGTH} limit: shorten the release id or environment")
    return token


def verify(keyring: Keyring, token: str, *, now: datetime, release_id: str, environment: str,
           digest: str, decision: str) -> Grant:
    """The grant of a genuine, unexpired link for this release, environment, digest and decision.

    Checks in order: signature (`TokenInvalid`), binding (`TokenMismatch`), expiry
    (`TokenExpired`), scope (`TokenScope`). Does not check the nonce was unused.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    current = _epoch_seconds("now", now)
    grant = _authentic(keyring, token)
    bound = (grant.release_id, grant.environment, grant.digest)
    if bound != (release_id, environment, digest):
        raise TokenMismatch(
            f"this link approves another image: it is for release {grant.release_id} in"
            f" {grant.environment} ({_short(grant.digest)}), not release {release_id} in"
            f" {environment} ({_short(digest)})")
    if current >= grant.expires_at.timestamp():
        raise TokenExpired(f"this approval link for release {grant.release_id} in"
                           f" {grant.environment} expired at {grant.expires_at.isoformat()};"
                           " ask for a new link")
    if not grant.allows(decision):
        raise TokenScope(f"this link may only {grant.scope} release {grant.release_id} in"
                         f" {grant.environment}, not {decision} it")
    return grant


def _authentic(keyring: Keyring, token: object) -> Grant:
    """Decode and authenticate; every failure is the same `TokenInvalid`."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise TokenInvalid()
    body, dot, signature = token.partition(".")
    mac = _b64decode(signature) if dot else None
    if mac is None or _b64decode(body) is None:
        raise TokenInvalid()
    key_id = None
    for candidate, secret in keyring.keys.items():  # every key, no early exit
        if hmac.compare_digest(_mac(secret, body), mac):
            key_id = candidate
    if key_id is None:
        raise TokenInvalid()
    try:
        return _grant(read_json(_b64decode(body) or b"", limit=MAX_TOKEN_LENGTH, what="link"),
                      key_id)
    except (ValueError, TypeError, KeyError, OverflowError):
        raise TokenInvalid() from None


def _grant(payload: Any, key_id: str) -> Grant:
    """The grant of an authenticated payload; ValueError/TypeError/KeyError if its shape is off."""
    if not isinstance(payload, dict) or payload["v"] != _VERSION or payload["kid"] != key_id:
        raise ValueError("unexpected payload")
    texts = [payload[name] for name in ("rel", "env", "dig", "scp", "n")]
    expiry = payload["exp"]
    approver = payload.get("apr")
    if not all(isinstance(text, str) and text for text in texts) or payload["scp"] not in SCOPES \
            or type(expiry) is not int or not (approver is None
                                               or isinstance(approver, str) and approver):
        raise ValueError("unexpected payload")
    return Grant(release_id=payload["rel"], environment=payload["env"], digest=payload["dig"],
                 scope=payload["scp"], expires_at=datetime.fromtimestamp(expiry, UTC),
                 nonce=payload["n"], key_id=key_id, approver=approver)


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, _MAC_PREFIX + body.encode("ascii"), hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict unpadded base64url: None for other alphabets, padding or non-canonical text."""
    if not _B64URL.fullmatch(text):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == text else None


def _epoch_seconds(name: str, moment: datetime) -> float:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got {moment!r}")
    return moment.timestamp()


def _require_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _short(digest: str) -> str:
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:12]}…" if len(hexdigits) > 12 else digest
