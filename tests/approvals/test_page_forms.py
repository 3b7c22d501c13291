"""Anti-forgery for the approval form: double-submit cookie, Origin/Referer, body parsing."""

from __future__ import annotations

import pytest

from shared.approvals import forms
from shared.approvals.forms import ForgeryError, FormError, check_form, form_value, parse_form

APP = "http://127.0.0.1:7071/api/releases/r/approvals/prod?token=t"


def new_cookie(secure: bool = False) -> tuple[str, str]:
    value, set_cookie = form_value(None, secure)
    assert set_cookie is not None
    return value, set_cookie.split(";", 1)[0]


def check(cookie: str | None, submitted: str | None, origin: str | None = "http://127.0.0.1:7071",
          referer: str | None = None, secure: bool = False) -> None:
    check_form(cookie_header=cookie, submitted=submitted, secure=secure, origin=origin,
               referer=referer, allowed=[APP, None])


def test_new_cookie_is_strict_http_only_and_random() -> None:
    value, set_cookie = form_value(None, secure=False)
    assert set_cookie == f"approval-csrf={value}; Path=/; HttpOnly; SameSite=Strict"
    assert len(value) >= 32 and form_value(None, secure=False)[0] != value


def test_over_https_the_cookie_is_host_prefixed_and_secure() -> None:
    value, set_cookie = form_value("other=1", secure=True)
    assert set_cookie is not None
    assert set_cookie.startswith(f"__Host-approval-csrf={value}; Path=/;")
    assert set_cookie.endswith("; Secure")


def test_an_existing_cookie_is_reused_so_two_open_pages_both_work() -> None:
    value, pair = new_cookie()
    assert form_value(f"a=b; {pair}", secure=False) == (value, None)
    assert form_value("approval-csrf=short", secure=False)[1] is not None


def test_matching_cookie_and_same_origin_pass() -> None:
    value, pair = new_cookie()
    check(pair, value)
    check(pair, value, origin=None, referer=APP)  # no Origin: the Referer decides
    check(pair, value, origin=None, referer=None)  # neither: the cookie alone
    check(pair, value, origin="HTTP://127.0.0.1:7071")


@pytest.mark.parametrize(("cookie", "submitted"), [
    (None, "v" * 43), ("approval-csrf=" + "v" * 43, None),
    ("approval-csrf=" + "v" * 43, "w" * 43), ("approval-csrf=" + "v" * 43, "v" * 42),
    ("__Host-approval-csrf=" + "v" * 43, "v" * 43),  # the https cookie on plain http
])
def test_missing_or_different_values_are_forgery(cookie: str | None,
                                                 submitted: str | None) -> None:
    with pytest.raises(ForgeryError, match="reload the page"):
        check(cookie, submitted)


@pytest.mark.parametrize(("origin", "referer"), [
    ("https://evil.example", None), ("http://127.0.0.1:7072", None), ("null", None),
    (None, "https://evil.example/page"),
])
def test_cross_site_posts_are_forgery_even_with_the_cookie(origin: str | None,
                                                           referer: str | None) -> None:
    value, pair = new_cookie()
    with pytest.raises(ForgeryError, match="another site"):
        check(pair, value, origin=origin, referer=referer)


def test_default_ports_are_the_same_origin() -> None:
    value, pair = new_cookie(secure=True)
    check_form(cookie_header=pair, submitted=value, secure=True,
               origin="https://release.example.com",
               referer=None, allowed=["https://release.example.com:443/api/x"])


def test_parse_form() -> None:
    assert parse_form(b"csrf=abc&decision=approve&comment=ship+it%21") == {
        "csrf": "abc", "decision": "approve", "comment": "ship it!"}
    assert parse_form(b"decision=reject&comment=") == {"decision": "reject", "comment": ""}


@pytest.mark.parametrize(("body", "message"), [
    (b"decision=approve&decision=reject", "sent twice"),
    (b"decision=approve&token=x", "unexpected form field"),
    (b"\xff\xfe", "not UTF-8"),
    (b"comment=" + b"x" * forms.MAX_FORM_BYTES, "larger than"),
])
def test_parse_form_refuses(body: bytes, message: str) -> None:
    with pytest.raises(FormError, match=message):
        parse_form(body)


def test_media_type() -> None:
    assert forms.media_type("Application/JSON; charset=utf-8") == "application/json"
    assert forms.media_type(None) == ""
