"""Anti-forgery for the approval page's form, and parsing of its POST bodies.

The page's form carries a random value that must equal the `approval-csrf` cookie set with
the page (double-submit): another site can make a browser post the form, but it can neither
read nor set that cookie, which is `SameSite=Strict` and `HttpOnly` (and `__Host-`/`Secure`
over https). On top, a browser's `Origin` (or, without it, `Referer`) must be one of this
app's origins. Scripts use the JSON variant instead, which a browser cannot send
cross-site without a CORS preflight that this app never answers. Pure: no I/O, no clock.
Does not decide who may approve: see identity.py.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Final
from urllib.parse import parse_qsl, urlsplit

FIELD: Final = "csrf"
COOKIE: Final = "approval-csrf"
SECURE_COOKIE: Final = "__Host-approval-csrf"
FORM_TYPE: Final = "application/x-www-form-urlencoded"
JSON_TYPE: Final = "application/json"
MAX_FORM_BYTES: Final = 16 * 1024
FORM_FIELDS: Final = frozenset({FIELD, "decision", "comment"})
_VALUE = re.compile(r"[A-Za-z0-9_-]{32,64}")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class ForgeryError(ValueError):
    """The form post did not come from our page; the message says what was missing."""


class FormError(ValueError):
    """The body is not a form or JSON request we accept; the message is one line."""


def cookie_name(secure: bool) -> str:
    """`__Host-approval-csrf` over https (browsers then demand Secure, Path=/), else plain."""
    return SECURE_COOKIE if secure else COOKIE


def form_value(cookie_header: str | None, secure: bool) -> tuple[str, str | None]:
    """The value for the page's form, and a Set-Cookie header when a new one is needed.

    An existing well-formed cookie is reused so that two open approval pages both work.
    """
    current = cookies(cookie_header).get(cookie_name(secure))
    if current is not None and _VALUE.fullmatch(current):
        return current, None
    value = secrets.token_urlsafe(32)
    attributes = "Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return value, f"{cookie_name(secure)}={value}; {attributes}"


def check_form(*, cookie_header: str | None, submitted: str | None, secure: bool,
               origin: str | None, referer: str | None,
               allowed: Iterable[str | None]) -> None:
    """ForgeryError unless the form value matches the cookie and the post is same-origin.

    `allowed`: URLs whose origins may post (the request's own, the links' base); None skipped.
    """
    allowed_origins = {_origin(url) for url in allowed if url} - {None}
    if origin is not None and origin.strip():
        if _origin(origin) not in allowed_origins:
            raise ForgeryError("this form was posted from another site; open the approval link"
                               " again and decide on that page")
    elif referer is not None and referer.strip() and _origin(referer) not in allowed_origins:
        raise ForgeryError("this form was posted from another site; open the approval link"
                           " again and decide on that page")
    expected = cookies(cookie_header).get(cookie_name(secure))
    if not expected or not submitted or not _VALUE.fullmatch(submitted) \
            or not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise ForgeryError("the approval form expired or did not come from the approval page"
                           " (cookies must be enabled); reload the page and decide again")


def cookies(header: str | None) -> dict[str, str]:
    """Cookie header → {name: value}; a malformed header counts as no cookies."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json` (lower case)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_form(body: bytes) -> dict[str, str]:
    """A urlencoded body of our form's fields, each once; FormError otherwise."""
    if len(body) > MAX_FORM_BYTES:
        raise FormError(f"form is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=len(FORM_FIELDS) + 1)
    except (UnicodeDecodeError, ValueError):
        raise FormError("form is not UTF-8 urlencoded fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name not in FORM_FIELDS:
            raise FormError(f"unexpected form field {name[:40]!r}")
        if name in fields:
            raise FormError(f"form field {name!r} was sent twice")
        fields[name] = value
    return fields


def _origin(url: str) -> str | None:
    """`scheme://host[:port]` with default ports dropped, lower case; None if not http(s)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS[scheme] else "")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
