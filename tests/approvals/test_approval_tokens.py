"""Signed approval links: round trip, tampering, expiry, key rotation, binding and scope."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.approvals import tokens
from shared.approvals.tokens import (
    MAX_TOKEN_LENGTH,
    Grant,
    Keyring,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenMismatch,
    TokenScope,
    issue,
    new_nonce,
    verify,
)

OLD_KEY = b"o" * 32
NEW_KEY = b"n" * 32
DIGEST = "sha256:" + "9f2c" * 16
OTHER_DIGEST = "sha256:" + "41aa" * 16
EXPIRES = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BEFORE = EXPIRES - timedelta(minutes=5)
NONCE = "nonce-0123456789abcdef"
BOUND = {"release_id": "delivery-9f2c9f2c9f2c9f2c", "environment": "prod", "digest": DIGEST}


def sign(keyring: Keyring | None = None, *, scope: str = "decide", **overrides: object) -> str:
    fields = {**BOUND, "scope": scope, "expires_at": EXPIRES, "nonce": NONCE, **overrides}
    return issue(keyring or Keyring({"k2": NEW_KEY}, primary="k2"), **fields)


def check(token: str, keyring: Keyring | None = None, *, now: datetime = BEFORE,
          decision: str = "approve", **overrides: str) -> Grant:
    return verify(keyring or Keyring({"k2": NEW_KEY}, primary="k2"), token, now=now,
                  decision=decision, **{**BOUND, **overrides})


def flip(text: str, index: int) -> str:
    swapped = "B" if text[index] != "B" else "C"
    return text[:index] + swapped + text[index + 1:]


def test_round_trip_returns_the_grant() -> None:
    token = sign()
    grant = check(token)
    assert grant == Grant(release_id=BOUND["release_id"], environment="prod", digest=DIGEST,
                          scope="decide", expires_at=EXPIRES, nonce=NONCE, key_id="k2")
    assert token.count(".") == 1
    assert all(ch.isalnum() or ch in "-_." for ch in token)


def test_new_nonce_is_url_safe_random_and_accepted() -> None:
    first, second = new_nonce(), new_nonce()
    assert first != second
    assert check(sign(nonce=first)).nonce == first


def test_expiry_is_floored_to_the_second_and_accepts_other_timezones() -> None:
    plus_two = timezone(timedelta(hours=2))
    token = sign(expires_at=(EXPIRES + timedelta(microseconds=900_000)).astimezone(plus_two))
    assert check(token).expires_at == EXPIRES


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda t: flip(t, 5), id="payload-byte-flipped"),
    pytest.param(lambda t: flip(t, len(t) - 3), id="signature-flipped"),
    pytest.param(lambda t: t[:-1], id="signature-truncated"),
    pytest.param(lambda t: t[: t.index(".")], id="signature-missing"),
    pytest.param(lambda t: t[: t.index(".") + 1], id="signature-empty"),
    pytest.param(lambda t: t[: len(t) // 2], id="cut-in-half"),
    pytest.param(lambda t: t.replace("-", "+").replace("_", "/") + "+/", id="standard-alphabet"),
    pytest.param(lambda t: t + "=", id="padding"),
    pytest.param(lambda t: t + ".x", id="extra-part"),
    pytest.param(lambda t: " " + t, id="leading-space"),
    pytest.param(lambda t: t.replace(".", "é"), id="non-ascii"),
    pytest.param(lambda t: "", id="empty"),
    pytest.param(lambda t: ".", id="only-dot"),
    pytest.param(lambda t: "A" * (MAX_TOKEN_LENGTH + 1), id="huge"),
    pytest.param(lambda t: t + "A" * 10_000_000, id="huge-suffix"),
])
def test_tampered_tokens_are_invalid_with_one_message(mangle) -> None:
    token = sign()
    with pytest.raises(TokenInvalid) as caught:
        check(mangle(token))
    assert str(caught.value) == str(TokenInvalid())


def test_non_string_token_is_invalid() -> None:
    with pytest.raises(TokenInvalid):
        check(None)


def test_payload_swapped_between_tokens_is_invalid() -> None:
    approve = sign(scope="approve")
    reject = sign(scope="reject")
    forged = reject.split(".")[0] + "." + approve.split(".")[1]
    with pytest.raises(TokenInvalid):
        check(forged, decision="reject")


def test_reencoded_payload_with_changed_field_is_invalid() -> None:
    body, mac = sign(scope="reject").split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["scp"] = "approve"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        check(f"{forged}.{mac}")


@pytest.mark.parametrize("change", [
    {"v": 2}, {"kid": "k1"}, {"exp": "2026-11-22"}, {"exp": 1.5}, {"scp": "all"}, {"rel": ""},
    {"n": None}, {"dig": 7}, {"apr": ""}, {"apr": 3},
])
def test_signed_payload_of_the_wrong_shape_is_invalid(change: dict[str, object]) -> None:
    payload = {"v": 1, "kid": "k2", "rel": BOUND["release_id"], "env": "prod", "dig": DIGEST,
               "scp": "decide", "exp": int(EXPIRES.timestamp()), "n": NONCE}
    assert check(forge(json.dumps(payload).encode())).nonce == NONCE  # unchanged: verifies
    with pytest.raises(TokenInvalid):
        check(forge(json.dumps({**payload, **change}).encode()))


def test_a_link_names_its_approver_when_issued_for_one() -> None:
    assert check(sign()).approver is None
    grant = check(sign(approver=" ann@example.com "))
    assert grant.approver == "ann@example.com"
    with pytest.raises(ValueError, match="approver must be a non-empty string"):
        sign(approver="  ")


def test_signed_payload_that_is_not_json_is_invalid() -> None:
    with pytest.raises(TokenInvalid):
        check(forge(b"[1, 2"))


@pytest.mark.parametrize("payload", [b"[" * 3000 + b"]" * 3000, b'{"v": NaN}'])
def test_signed_payload_the_bounded_reader_refuses_is_invalid(payload: bytes) -> None:
    with pytest.raises(TokenInvalid):
        check(forge(payload))


def forge(payload: bytes) -> str:
    """A token with a correct signature over an arbitrary payload (as if the key leaked)."""
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(tokens._mac(NEW_KEY, body)).rstrip(b"=").decode()
    return f"{body}.{mac}"


def test_expired_exactly_at_expiry_and_valid_one_microsecond_before() -> None:
    token = sign()
    assert check(token, now=EXPIRES - timedelta(microseconds=1)).nonce == NONCE
    with pytest.raises(TokenExpired, match="expired at 2026-11-22T12:00:00"):
        check(token, now=EXPIRES)
    with pytest.raises(TokenExpired):
        check(token, now=EXPIRES + timedelta(days=1))


def test_naive_clock_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check(sign(), now=datetime(2026, 11, 22, 11, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(expires_at=datetime(2026, 11, 22, 12, 0))


def test_rotation_old_key_verifies_while_active_and_fails_once_removed() -> None:
    before = Keyring({"k1": OLD_KEY}, primary="k1")
    during = Keyring({"k1": OLD_KEY, "k2": NEW_KEY}, primary="k2")
    after = Keyring({"k2": NEW_KEY}, primary="k2")
    old_token = sign(before)
    new_token = sign(during)
    assert check(old_token, during).key_id == "k1"
    assert check(new_token, during).key_id == "k2"
    assert check(new_token, after).key_id == "k2"
    with pytest.raises(TokenInvalid):
        check(old_token, after)


def test_same_key_id_with_another_secret_is_invalid() -> None:
    token = sign(Keyring({"k1": OLD_KEY}, primary="k1"))
    with pytest.raises(TokenInvalid):
        check(token, Keyring({"k1": NEW_KEY}, primary="k1"))


@pytest.mark.parametrize("field,value", [
    ("release_id", "delivery-41aa41aa41aa41aa"),
    ("environment", "qa"),
    ("digest", OTHER_DIGEST),
])
def test_link_bound_to_another_release_environment_or_digest(field: str, value: str) -> None:
    with pytest.raises(TokenMismatch, match="this link approves another image"):
        check(sign(), **{field: value})


def test_mismatch_is_reported_before_expiry() -> None:
    with pytest.raises(TokenMismatch):
        check(sign(), now=EXPIRES, digest=OTHER_DIGEST)


@pytest.mark.parametrize("scope,decision,allowed", [
    ("approve", "approve", True),
    ("approve", "reject", False),
    ("reject", "reject", True),
    ("reject", "approve", False),
    ("decide", "approve", True),
    ("decide", "reject", True),
])
def test_scope_rules(scope: str, decision: str, allowed: bool) -> None:
    token = sign(scope=scope)
    if allowed:
        assert check(token, decision=decision).scope == scope
    else:
        with pytest.raises(TokenScope, match=f"may only {scope} .* not {decision} it"):
            check(token, decision=decision)


def test_unknown_decision_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="decision 'decide'"):
        check(sign(), decision="decide")


@pytest.mark.parametrize("overrides,message", [
    ({"scope": "maybe"}, "scope 'maybe'"),
    ({"digest": "latest"}, "digest 'latest'"),
    ({"release_id": " "}, "release_id"),
    ({"environment": ""}, "environment"),
    ({"nonce": "short"}, "nonce"),
    ({"nonce": "has space in it 0123456"}, "nonce"),
    ({"release_id": "r" * MAX_TOKEN_LENGTH}, "over the 2048 limit"),
])
def test_issue_refuses_bad_fields(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sign(**overrides)


@pytest.mark.parametrize("keys,primary,message", [
    ({}, "k1", "keyring is empty"),
    ({"k1": b"short"}, "k1", "at least 32"),
    ({"k1": "text" * 10}, "k1", "at least 32"),
    ({"k 1": OLD_KEY}, "k 1", "key id 'k 1'"),
    ({"k1": OLD_KEY}, "k2", "primary approval key 'k2' is not in the keyring"),
])
def test_keyring_refuses_bad_keys(keys: dict, primary: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Keyring(keys, primary=primary)
    assert "oooo" not in str(caught.value)


def test_no_key_material_or_token_in_messages_or_repr() -> None:
    keyring = Keyring({"k1": OLD_KEY, "k2": NEW_KEY}, primary="k2")
    token = sign(keyring, scope="reject")
    body, mac = token.split(".")
    messages = [repr(keyring), str(keyring)]
    attempts = [
        lambda: check(flip(token, 3), keyring),
        lambda: check(token, keyring, now=EXPIRES),
        lambda: check(token, keyring, digest=OTHER_DIGEST),
        lambda: check(token, keyring, decision="approve"),
    ]
    for attempt in attempts:
        with pytest.raises(TokenError) as caught:
            attempt()
        messages.append(str(caught.value))
        messages.append(repr(caught.value))
    for message in messages:
        for secret in (OLD_KEY, NEW_KEY):
            assert secret.decode() not in message
            assert base64.urlsafe_b64encode(secret).decode().rstrip("=") not in message
        assert token not in message
        assert body not in message and mac not in message
        assert NONCE not in message
