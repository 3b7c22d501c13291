"""Approval settings, links, the links and card of a gate opening, and decision event data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.approvals import keys, teams
from shared.approvals.decisions import decision_data
from shared.approvals.links import page_path, page_url
from shared.approvals.requests import gate_links, release_card
from shared.approvals.tokens import TokenInvalid, verify
from shared.policy.model import Gate

KEY = "k" * 40
OLD = "o" * 40
NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
REQUEST = {"releaseId": "delivery-abababababababab", "service": "delivery", "version": "v1.0.0",
           "digest": DIGEST, "environment": "prod", "pushedBy": "ci-bot",
           "deadline": (NOW + timedelta(hours=72)).isoformat(), "evidence": "qa: health ok",
           "gate": {"approvers": {"users": ["ann@example.com", "bob@example.com"],
                                  "groups": ["ops"]}, "deadlineSeconds": 72 * 3600}}
GATE = Gate.from_dict(REQUEST["gate"])


def gate(**approvers: list[str]) -> Gate:
    """A gate of a snapshot with these approvers."""
    return Gate.from_dict({"approvers": approvers, "deadlineSeconds": 3600})


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_keyring_signs_with_the_current_key_and_verifies_with_the_previous() -> None:
    ring = keys.app_keyring({"APPROVAL_SIGNING_KEY": KEY, "APPROVAL_SIGNING_KEY_PREVIOUS": OLD})
    assert ring.primary == keys.key_id(KEY.encode()) and len(ring.keys) == 2
    assert KEY not in repr(ring) and OLD not in repr(ring)
    single = keys.app_keyring({"APPROVAL_SIGNING_KEY": KEY, "APPROVAL_SIGNING_KEY_PREVIOUS": ""})
    assert list(single.keys) == [single.primary]


@pytest.mark.parametrize(("settings", "message"), [
    ({}, "APPROVAL_SIGNING_KEY is not set"),
    ({"APPROVAL_SIGNING_KEY": "short"}, "APPROVAL_SIGNING_KEY is too short"),
    ({"APPROVAL_SIGNING_KEY": "@Microsoft.KeyVault(SecretUri=https://v/secrets/k)"},
     "unresolved Key Vault reference"),
    ({"APPROVAL_SIGNING_KEY": KEY, "APPROVAL_SIGNING_KEY_PREVIOUS": "tiny-secret"},
     "APPROVAL_SIGNING_KEY_PREVIOUS is too short"),
])
def test_bad_keys_name_the_setting_never_the_value(settings: dict, message: str) -> None:
    with pytest.raises(keys.ApprovalConfigError, match=message) as caught:
        keys.app_keyring(settings)
    assert "tiny-secret" not in str(caught.value)


def test_base_url_from_the_setting_or_the_azure_host_name() -> None:
    assert keys.base_url({"APPROVAL_BASE_URL": "http://127.0.0.1:7071/"}) == \
        "http://127.0.0.1:7071"
    assert keys.base_url({"WEBSITE_HOSTNAME": "rel.azurewebsites.net"}) == \
        "https://rel.azurewebsites.net"
    for bad in ({}, {"APPROVAL_BASE_URL": "ftp://x"}, {"APPROVAL_BASE_URL": "https://x/?a=1"}):
        with pytest.raises(keys.ApprovalConfigError, match="APPROVAL_BASE_URL"):
            keys.base_url(bad)


def test_identity_mode_follows_app_service_authentication_unless_set() -> None:
    assert keys.identity_mode({}) == "token"
    assert keys.identity_mode({"WEBSITE_AUTH_ENABLED": "True"}) == "appservice"
    assert keys.identity_mode({"WEBSITE_AUTH_ENABLED": "True", "APPROVAL_IDENTITY": "token"}) \
        == "token"
    with pytest.raises(keys.ApprovalConfigError, match="APPROVAL_IDENTITY must be one of"):
        keys.identity_mode({"APPROVAL_IDENTITY": "anyone"})
    assert keys.identity_mode({"WEBSITE_AUTH_ENABLED": "true",
                               "APPROVAL_IDENTITY": "AppService"}) == "appservice"


@pytest.mark.parametrize("enabled", [None, "", "false", "False", "1", "yes"])
def test_sign_in_headers_are_not_trusted_without_app_service_authentication(
        enabled: str | None) -> None:
    settings = {"APPROVAL_IDENTITY": "appservice"}
    if enabled is not None:
        settings["WEBSITE_AUTH_ENABLED"] = enabled
    assert not keys.app_service_auth(settings)
    with pytest.raises(keys.SignInNotEnforced) as refused:
        keys.identity_mode(settings)
    assert refused.value.setting == "APPROVAL_IDENTITY"
    assert str(refused.value) == (
        "APPROVAL_IDENTITY is appservice but App Service Authentication is off"
        " (WEBSITE_AUTH_ENABLED is not true), so anyone could send the sign-in headers: turn"
        " on App Service Authentication, or set APPROVAL_IDENTITY=token")


GOOD = {"APPROVAL_SIGNING_KEY": KEY, "APPROVAL_BASE_URL": "https://release.example.com"}
GATES = {"delivery/prod": GATE}


def test_no_problems_with_good_settings_in_either_mode() -> None:
    assert keys.problems(GOOD, GATES) == []
    assert keys.problems({**GOOD, "WEBSITE_AUTH_ENABLED": "true"},
                         {"delivery/prod": gate(groups=["ops"])}) == []


@pytest.mark.parametrize(("settings", "setting", "words"), [
    ({}, "APPROVAL_SIGNING_KEY", "APPROVAL_SIGNING_KEY is not set"),
    ({**GOOD, "APPROVAL_SIGNING_KEY": "tiny-secret"}, "APPROVAL_SIGNING_KEY", "too short"),
    ({**GOOD, "APPROVAL_SIGNING_KEY_PREVIOUS": "tiny-secret"}, "APPROVAL_SIGNING_KEY_PREVIOUS",
     "too short"),
    ({**GOOD, "APPROVAL_BASE_URL": "ftp://tiny-secret"}, "APPROVAL_BASE_URL", "http(s)"),
    ({"APPROVAL_SIGNING_KEY": KEY}, "APPROVAL_BASE_URL", "is not set"),
    ({**GOOD, "APPROVAL_IDENTITY": "appservice"}, "APPROVAL_IDENTITY",
     "App Service Authentication is off"),
    ({**GOOD, "APPROVAL_IDENTITY": "tiny-secret"}, "APPROVAL_IDENTITY", "must be one of"),
])
def test_each_problem_names_its_setting_never_a_value(settings: dict, setting: str,
                                                      words: str) -> None:
    found = keys.problems(settings, GATES)
    assert [p.setting for p in found][:1] == [setting], found
    assert words in found[0].message
    assert "tiny-secret" not in repr(found) and KEY not in repr(found)


def test_what_is_checked_depends_on_the_gates() -> None:
    only_groups = {"delivery/prod": gate(users=[], groups=["ops"])}
    (problem,) = keys.problems(GOOD, only_groups)
    assert problem.setting == "APPROVAL_IDENTITY"
    assert problem.message.startswith("the gate of delivery/prod names only groups")
    assert keys.problems({}, {}) == []  # no gate: no key needed
    assert [p.setting for p in keys.problems({"APPROVAL_IDENTITY": "appservice"}, {})] == \
        ["APPROVAL_IDENTITY"]  # a sign-in that is not enforced is refused anyway
    assert [p.setting for p in keys.problems({}, None)] == [  # gates unknown: every setting
        "APPROVAL_SIGNING_KEY", "APPROVAL_BASE_URL"]


def test_page_url_quotes_every_part() -> None:
    assert page_path("a/b", "prod west") == "/api/releases/a%2Fb/approvals/prod%20west"
    assert page_url("http://h/", "r", "prod", "x.y+z") == \
        "http://h/api/releases/r/approvals/prod?token=x.y%2Bz"


def test_token_mode_gives_each_user_a_personal_link_bound_to_the_gate() -> None:
    ring = keys.app_keyring({"APPROVAL_SIGNING_KEY": KEY})
    links = gate_links(ring, "http://h", "token", REQUEST, GATE)
    assert links["approvalPage"] is None
    assert [link["approver"] for link in links["approvalLinks"]] == \
        ["ann@example.com", "bob@example.com"]
    grants = [verify(ring, token_of(link["url"]), now=NOW, release_id=REQUEST["releaseId"],
                     environment="prod", digest=DIGEST, decision="approve")
              for link in links["approvalLinks"]]
    assert [g.approver for g in grants] == ["ann@example.com", "bob@example.com"]
    assert grants[0].nonce != grants[1].nonce
    assert grants[0].expires_at == NOW + timedelta(hours=72)
    with pytest.raises(TokenInvalid):  # signed with the app's key only
        verify(keys.app_keyring({"APPROVAL_SIGNING_KEY": OLD}),
               token_of(links["approvalLinks"][0]["url"]), now=NOW,
               release_id=REQUEST["releaseId"], environment="prod", digest=DIGEST,
               decision="approve")


def test_appservice_mode_gives_one_link_naming_nobody() -> None:
    ring = keys.app_keyring({"APPROVAL_SIGNING_KEY": KEY})
    links = gate_links(ring, "http://h", "appservice", REQUEST, GATE)
    assert links["approvalLinks"] == []
    grant = verify(ring, token_of(links["approvalPage"]), now=NOW,
                   release_id=REQUEST["releaseId"], environment="prod", digest=DIGEST,
                   decision="reject")
    assert grant.approver is None


def test_token_mode_with_only_groups_says_what_to_change() -> None:
    ring = keys.app_keyring({"APPROVAL_SIGNING_KEY": KEY})
    request = {**REQUEST, "gate": {"approvers": {"users": [], "groups": ["ops"]}}}
    with pytest.raises(keys.ApprovalConfigError, match="names only groups"):
        gate_links(ring, "http://h", "token", request, gate(users=[], groups=["ops"]))


def test_cards_link_to_the_page_and_carry_a_review_button_per_approver() -> None:
    ring = keys.app_keyring({"APPROVAL_SIGNING_KEY": KEY})
    links = gate_links(ring, "http://h", "token", REQUEST, GATE)
    message = teams.approval_request_card(release_card(REQUEST, links), now=NOW)
    content = message["attachments"][0]["content"]
    actions = [(a["title"], a["url"]) for a in content["actions"]]
    assert actions == [(f"Review as {link['approver']}", link["url"])
                       for link in links["approvalLinks"]]
    facts = {f["title"]: f["value"] for f in content["body"][1]["facts"]}
    assert facts["Pushed by"] == "ci-bot" and facts["Verification"] == "qa: health ok"
    shared = gate_links(ring, "http://h", "appservice", REQUEST, GATE)
    card = release_card(REQUEST, shared)
    assert card.links.approve == shared["approvalPage"] + "&decision=approve"
    assert card.links.details == shared["approvalPage"]
    outcome = teams.outcome_card(card, "RolledBack", reason="prod verification failed")
    assert "Rolled back: prod verification failed" in str(outcome)
    assert "actions" not in outcome["attachments"][0]["content"]


def test_decision_data_is_validated_and_case_folded() -> None:
    data = decision_data(decision="approve", approver=" Ann ", identities=["Ann@Example.com",
                         "ann@example.com", "  "], nonce="n" * 16, at=NOW, event_id="e1",
                         via="page", groups=["ops", "ops"], comment="  ")
    assert data == {"eventId": "e1", "nonce": "n" * 16, "decision": "approve",
                    "approver": "Ann", "identities": ["ann@example.com"], "groups": ["ops"],
                    "comment": None, "at": NOW.isoformat(), "via": "page"}
    with pytest.raises(ValueError, match="not one of"):
        decision_data(decision="maybe", approver="a", identities=["a"], nonce="n", at=NOW,
                      event_id="e", via="api")
    with pytest.raises(ValueError, match="at least one identity"):
        decision_data(decision="reject", approver="a", identities=[], nonce="n", at=NOW,
                      event_id="e", via="api")
