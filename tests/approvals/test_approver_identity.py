"""Who is approving: App Service Authentication headers, local approvers, and the gate's rules."""

from __future__ import annotations

import base64
import json

import pytest

from shared.approvals.identity import (
    IdentityError,
    Principal,
    is_object_id,
    local_part,
    may_approve,
    principal_from_headers,
    same_person,
)

ANN_OID = "11111111-2222-3333-4444-555555555555"
RELEASERS = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def encode(body: object, *, pad: bool = True) -> str:
    text = base64.b64encode(json.dumps(body).encode()).decode()
    return text if pad else text.rstrip("=")


def aad_principal(*extra: dict[str, str], claims: list | None = None) -> dict:
    return {"auth_typ": "aad", "name_typ": NAME, "role_typ": ROLE, "claims": claims if claims
            is not None else [
                {"typ": NAME, "val": "Ann@Example.com"},
                {"typ": "preferred_username", "val": "ann@example.com"},
                {"typ": EMAIL, "val": "ann.smith@example.com"},
                {"typ": OID, "val": ANN_OID},
                {"typ": "groups", "val": RELEASERS},
                {"typ": "groups", "val": "ffffffff-0000-0000-0000-000000000000"},
                {"typ": ROLE, "val": "Release.Approver"},
                *extra,
            ]}


def headers(body: object | None = None, **extra: str) -> dict[str, str]:
    found = {"X-MS-CLIENT-PRINCIPAL-NAME": "Ann@Example.com", "X-MS-CLIENT-PRINCIPAL-ID": ANN_OID}
    if body is not None:
        found["X-MS-CLIENT-PRINCIPAL"] = body if isinstance(body, str) else encode(body)
    return {**found, **extra}


# --- principal_from_headers -------------------------------------------------------------------

def test_full_aad_principal() -> None:
    principal = principal_from_headers(headers(aad_principal()))
    assert principal is not None
    assert principal.name == "Ann@Example.com"
    assert principal.object_id == ANN_OID
    assert principal.groups == {RELEASERS, "ffffffff-0000-0000-0000-000000000000"}
    assert principal.roles == {"Release.Approver"}
    assert principal.provider == "aad" and not principal.is_local
    assert principal.identifiers() == {"ann@example.com", "ann.smith@example.com", ANN_OID}
    assert not principal.groups_incomplete


def test_header_names_are_case_insensitive_and_padding_optional() -> None:
    lowered = {key.lower(): value for key, value in headers().items()}
    lowered["x-ms-client-principal"] = encode(aad_principal(), pad=False)
    principal = principal_from_headers(lowered)
    assert principal is not None and principal.name == "Ann@Example.com"


def test_no_headers_means_no_app_service_authentication() -> None:
    assert principal_from_headers({}) is None
    blank_name = {"Content-Type": "text/html", "X-MS-CLIENT-PRINCIPAL-NAME": " "}
    assert principal_from_headers(blank_name) is None


def test_name_and_id_headers_without_the_principal_header() -> None:
    principal = principal_from_headers(headers())
    assert principal is not None
    assert (principal.name, principal.object_id, principal.groups) == \
        ("Ann@Example.com", ANN_OID, frozenset())


def test_short_aad_claim_types_and_custom_role_type() -> None:
    body = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": [
        {"typ": "name", "val": "Bob Jones"}, {"typ": "upn", "val": "bob@example.com"},
        {"typ": "oid", "val": "b0b"}, {"typ": "roles", "val": "Admin"},
    ]}
    principal = principal_from_headers({"X-MS-CLIENT-PRINCIPAL": encode(body)})
    assert principal is not None
    assert principal.name == "Bob Jones" and principal.object_id == "b0b"
    assert principal.roles == {"Admin"}
    assert "bob@example.com" in principal.identifiers()


def test_missing_name_claim_falls_back_to_header_then_email_then_object_id() -> None:
    only_email = aad_principal(claims=[{"typ": EMAIL, "val": "cy@example.com"}])
    assert principal_from_headers(headers(only_email)).name == "Ann@Example.com"
    assert principal_from_headers({"X-MS-CLIENT-PRINCIPAL": encode(only_email)}).name == \
        "cy@example.com"
    only_oid = aad_principal(claims=[{"typ": "oid", "val": "0id"}])
    assert principal_from_headers({"X-MS-CLIENT-PRINCIPAL": encode(only_oid)}).name == "0id"


def test_group_overage_is_flagged() -> None:
    principal = principal_from_headers(headers(aad_principal(
        claims=[{"typ": NAME, "val": "ann@example.com"}, {"typ": "hasgroups", "val": "true"}])))
    assert principal is not None and principal.groups_incomplete and not principal.groups


@pytest.mark.parametrize("value,message", [
    ("", "is empty"),
    ("   ", "is empty"),
    ("not base64!", "is not base64"),
    (base64.b64encode(b"\xff\xfe").decode(), "X-MS-CLIENT-PRINCIPAL is not UTF-8 text"),
    (base64.b64encode(b"{not json").decode(), "X-MS-CLIENT-PRINCIPAL is not valid JSON"),
    (encode(["claims"]), "decodes to a JSON list"),
    (encode({"auth_typ": "aad"}), "no 'claims' list"),
    (encode({"claims": {"typ": "name"}}), "no 'claims' list"),
    (encode({"claims": [{"typ": "name"}]}), "claim 0 is not"),
    (encode({"claims": [{"typ": "name", "val": "x"}, {"typ": 1, "val": "y"}]}), "claim 1 is not"),
    (encode({"claims": ["name"]}), "claim 0 is not"),
    ("A" * (64 * 1024 + 4), "over the 65536 limit"),
])
def test_malformed_principal_header(value: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        principal_from_headers(headers(value))


def test_principal_without_any_name_or_id() -> None:
    body = aad_principal(claims=[{"typ": ROLE, "val": "Reader"}])
    with pytest.raises(IdentityError, match="cannot tell who is approving"):
        principal_from_headers({"X-MS-CLIENT-PRINCIPAL": encode(body)})


# --- Principal.local --------------------------------------------------------------------------

def test_local_principal_from_the_token() -> None:
    local = Principal.local("  ann@example.com ")
    assert local.name == "ann@example.com" and local.is_local
    assert local.identifiers() == {"ann@example.com"} and not local.groups


@pytest.mark.parametrize("name", ["", "   ", None])
def test_local_principal_needs_a_name(name: object) -> None:
    with pytest.raises(IdentityError, match="local approver name"):
        Principal.local(name)


# --- may_approve ------------------------------------------------------------------------------

ANN = Principal(name="Ann@Example.com", object_id=ANN_OID,
                aliases=frozenset({"Ann@Example.com", "ann.smith@example.com"}),
                groups=frozenset({RELEASERS}), provider="aad")


def test_listed_user_matches_case_insensitively() -> None:
    assert may_approve(ANN, users=["ANN@example.COM"], groups=[], pusher=None,
                       environment="prod") == (True, "Ann@Example.com is an approver of prod")


@pytest.mark.parametrize("user", ["ann.smith@EXAMPLE.com", ANN_OID.upper(), " ann@example.com "])
def test_user_matches_any_alias_or_object_id(user: str) -> None:
    assert may_approve(ANN, users=[user], groups=[], pusher=None)[0]


def test_group_member_matches_by_id_case_insensitively() -> None:
    allowed, reason = may_approve(ANN, users=["bob@example.com"], groups=[RELEASERS.upper()],
                                  pusher="bob@example.com", environment="prod")
    assert allowed
    assert reason == ("Ann@Example.com is an approver of prod as a member of group"
                      f" {RELEASERS.upper()}")


def test_not_listed() -> None:
    assert may_approve(ANN, users=["bob@example.com"], groups=["other-group"], pusher=None,
                       environment="prod") == (False, "Ann@Example.com is not an approver of prod")


def test_reason_without_environment() -> None:
    assert may_approve("ann@example.com", users=["bob@example.com"], groups=[], pusher=None) == \
        (False, "ann@example.com is not an approver")


@pytest.mark.parametrize("pusher", ["ann@example.com", "ANN.SMITH@example.com", ANN_OID,
                                    " Ann@Example.com "])
def test_pusher_never_approves_even_when_listed(pusher: str) -> None:
    allowed, reason = may_approve(ANN, users=["ann@example.com"], groups=[RELEASERS],
                                  pusher=pusher, environment="prod")
    assert not allowed
    assert "the person who pushed the image may not approve it" in reason


@pytest.mark.parametrize("pusher", [None, "", "  ", "bob@example.com", "anne", "ann@contoso.com",
                                    "ann.smith@contoso.com", "example.com", "@example.com"])
def test_other_or_unknown_pusher_does_not_block(pusher: str | None) -> None:
    assert may_approve(ANN, users=["ann@example.com"], groups=[], pusher=pusher)[0]


# --- separation of duties: who counts as the pusher ------------------------------------------

@pytest.mark.parametrize(("pusher", "approver"), [
    ("release-manager", "release-manager@example.com"),       # the case
    ("Release-Manager", "release-manager@EXAMPLE.com"),       # case-insensitively
    ("ann@example.com", "ann"),                               # the reverse
    (" ANN@Example.com ", "ann@example.com"),
    ("ann", "ann"),
    (ANN_OID.upper(), ANN_OID),                               # object ids match object ids
])
def test_same_person(pusher: str, approver: str) -> None:
    assert same_person(pusher, [approver])
    allowed, reason = may_approve(approver, users=[approver], groups=[], pusher=pusher)
    assert not allowed
    assert reason.startswith(f"{approver} pushed the image")


@pytest.mark.parametrize(("pusher", "approver"), [
    ("ann@contoso.com", "ann@example.com"),     # two addresses match only whole
    ("ann", "anne@example.com"),
    ("ann", "bob"),
    ("", "ann"),
    ("   ", "ann@example.com"),
    ("ann", "@ann"),                            # not an address: no local part
    (ANN_OID, f"{ANN_OID}@example.com"),        # an object id is never a local part …
    ("11111111", f"{ANN_OID}"),                 # … nor a piece of one
])
def test_not_the_same_person(pusher: str, approver: str) -> None:
    assert not same_person(pusher, [approver])


def test_a_bare_pusher_matches_any_alias_the_principal_carries() -> None:
    """UPN and e-mail are different addresses of one person: either local part matches."""
    upn_and_mail = Principal(name="Ann Smith", object_id=ANN_OID, provider="aad",
                             aliases=frozenset({"asmith@contoso.onmicrosoft.com",
                                                "ann.smith@example.com"}))
    for pusher in ("asmith", "ANN.SMITH", "asmith@contoso.onmicrosoft.com", ANN_OID):
        allowed, reason = may_approve(upn_and_mail, users=["ann.smith@example.com"], groups=[],
                                      pusher=pusher, environment="prod")
        assert not allowed, pusher
        assert reason == (f"Ann Smith pushed the image (as {pusher}); the person who pushed the"
                          " image may not approve it")
    assert may_approve(upn_and_mail, users=["ann.smith@example.com"], groups=[],
                       pusher="ann")[0]


def test_the_allow_list_is_not_widened_by_local_parts() -> None:
    """Refusing the pusher matches loosely; allowing an approver matches exactly."""
    assert not may_approve("ann@example.com", users=["ann"], groups=[], pusher=None)[0]
    assert not may_approve("ann", users=["ann@example.com"], groups=[], pusher=None)[0]


def test_local_parts_and_object_ids() -> None:
    assert local_part("Ann.Smith@Example.com") == "ann.smith"
    assert [local_part(n) for n in ("ann", "@example.com", "ann@", "a@b@c")] == \
        [None, None, None, None]
    assert is_object_id(ANN_OID.upper()) and not is_object_id("ann") \
        and not is_object_id(ANN_OID + "0")


def test_local_name_string_is_accepted() -> None:
    assert may_approve("Ann@Example.com", users=["ann@example.com"], groups=[], pusher=None) == \
        (True, "Ann@Example.com is an approver")
    assert not may_approve("Ann@Example.com", users=[], groups=[RELEASERS], pusher=None)[0]


def test_empty_gate_lets_nobody_approve() -> None:
    allowed, reason = may_approve(ANN, users=["", "  "], groups=[], pusher=None,
                                  environment="prod")
    assert not allowed
    assert reason == "nobody may approve in prod: the gate names no approvers (users or groups)"


def test_group_overage_explains_itself() -> None:
    overage = Principal(name="ann@example.com", groups_incomplete=True, provider="aad")
    allowed, reason = may_approve(overage, users=[], groups=[RELEASERS], pusher=None,
                                  environment="prod")
    assert not allowed
    assert reason.startswith("ann@example.com is not an approver of prod (their sign-in lists")


def test_users_and_groups_may_be_any_iterable() -> None:
    assert may_approve(ANN, users=(u for u in ["ann@example.com"]), groups=frozenset(),
                       pusher=None)[0]
