"""Who is approving, and whether they may: App Service Authentication headers and the gate's list.

`principal_from_headers` reads `X-MS-CLIENT-PRINCIPAL` (base64 JSON of the signed-in user's
claims) and `X-MS-CLIENT-PRINCIPAL-NAME` / `-ID`. App Service strips these headers from
incoming requests and sets them itself, so they are trustworthy only when App Service
Authentication is on; without it (local runs) the approver is the one named in the token,
`Principal.local(name)`. `may_approve` applies the gate's users and groups and separation of
duties (never the pusher, matched by `same_person`). Pure: does not call Microsoft Graph, so
group-overage principals (too many groups for the token) match by user only.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared.json_input import JsonInputError, read_json

PRINCIPAL_HEADER: Final = "x-ms-client-principal"
NAME_HEADER: Final = "x-ms-client-principal-name"
ID_HEADER: Final = "x-ms-client-principal-id"
MAX_PRINCIPAL_HEADER: Final = 64 * 1024

_NAME_CLAIMS: Final = ("name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
_ALIAS_CLAIMS: Final = (
    "preferred_username", "upn", "email", "emails", "unique_name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
)
_OID_CLAIMS: Final = ("oid", "http://schemas.microsoft.com/identity/claims/objectidentifier")
_ROLE_CLAIMS: Final = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_GROUP_CLAIMS: Final = ("groups",)
_OVERAGE_CLAIMS: Final = ("hasgroups", "_claim_names")
_OBJECT_ID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class IdentityError(ValueError):
    """The identity headers are present but unusable; says which header and why."""


@dataclass(frozen=True)
class Principal:
    """A signed-in person (or a local run's named approver) with their groups and roles."""

    name: str
    object_id: str | None = None
    aliases: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)
    provider: str = "local"
    groups_incomplete: bool = False

    @classmethod
    def local(cls, name: str) -> Principal:
        """The approver named in a token, for runs without App Service Authentication."""
        if not isinstance(name, str) or not name.strip():
            raise IdentityError(f"local approver name must be a non-empty string, got {name!r}")
        return cls(name=name.strip(), aliases=frozenset({name.strip()}))

    @property
    def is_local(self) -> bool:
        """True when the identity comes from a token, not from App Service Authentication."""
        return self.provider == "local"

    def identifiers(self) -> frozenset[str]:
        """Every name this principal answers to (name, UPN, email, object id), casefolded."""
        names = {self.name, *self.aliases}
        if self.object_id:
            names.add(self.object_id)
        return frozenset(_fold(value) for value in names if value)


def principal_from_headers(headers: Mapping[str, str]) -> Principal | None:
    """The signed-in principal, or None without App Service Authentication headers."""
    lookup = {key.lower(): value for key, value in headers.items()}
    header_name = (lookup.get(NAME_HEADER) or "").strip() or None
    header_id = (lookup.get(ID_HEADER) or "").strip() or None
    encoded = lookup.get(PRINCIPAL_HEADER)
    if encoded is None:
        if header_name is None and header_id is None:
            return None
        label = header_name or header_id or ""
        return Principal(name=label, object_id=header_id, aliases=frozenset({label}),
                         provider="unknown")
    body = _decode(encoded)
    claims = _claims(body)
    name_types = (_text_or(body.get("name_typ"), _NAME_CLAIMS[1]), *_NAME_CLAIMS)
    role_types = (_text_or(body.get("role_typ"), _ROLE_CLAIMS[1]), *_ROLE_CLAIMS)
    object_id = header_id or _first(claims, _OID_CLAIMS)
    name = _first(claims, name_types) or header_name or _first(claims, _ALIAS_CLAIMS) or object_id
    if not name:
        raise IdentityError("X-MS-CLIENT-PRINCIPAL has no name, e-mail, UPN or object id claim,"
                            " and X-MS-CLIENT-PRINCIPAL-NAME/-ID are missing: cannot tell who"
                            " is approving")
    aliases = {name, *_all(claims, _ALIAS_CLAIMS), *_all(claims, name_types)}
    if header_name:
        aliases.add(header_name)
    return Principal(name=name, object_id=object_id, aliases=frozenset(aliases),
                     groups=frozenset(_all(claims, _GROUP_CLAIMS)),
                     roles=frozenset(_all(claims, role_types)),
                     provider=_text_or(body.get("auth_typ"), "unknown"),
                     groups_incomplete=bool(_all(claims, _OVERAGE_CLAIMS)))


def may_approve(principal_or_name: Principal | str, *, users: Iterable[str],
                groups: Iterable[str], pusher: str | None,
                environment: str | None = None) -> tuple[bool, str]:
    """Whether this person may approve, and a sentence saying why, for the card and the ledger.

    Users match name, UPN, e-mail or object id exactly; groups match group ids (or names,
    when the tenant emits them); all case-insensitively. The pusher never may, even when
    listed, and matches more loosely (`same_person`): refusing is the safe side.
    """
    principal = (Principal.local(principal_or_name) if isinstance(principal_or_name, str)
                 else principal_or_name)
    who = principal.name
    where = f" of {environment}" if environment else ""
    known = principal.identifiers()
    if pusher and same_person(pusher, known):
        alias = "" if _fold(pusher) == _fold(who) else f" (as {' '.join(pusher.split())})"
        return False, (f"{who} pushed the image{alias}; the person who pushed the image may"
                       " not approve it")
    user_list = [user for user in users if isinstance(user, str) and user.strip()]
    group_list = [group for group in groups if isinstance(group, str) and group.strip()]
    if not user_list and not group_list:
        scope = f" in {environment}" if environment else ""
        return False, f"nobody may approve{scope}: the gate names no approvers (users or groups)"
    for user in user_list:
        if _fold(user) in known:
            return True, f"{who} is an approver{where}"
    principal_groups = {_fold(group) for group in principal.groups}
    for group in group_list:
        if _fold(group) in principal_groups:
            return True, f"{who} is an approver{where} as a member of group {group.strip()}"
    reason = f"{who} is not an approver{where}"
    if group_list and principal.groups_incomplete:
        reason += (" (their sign-in lists too many groups to check membership; add them by"
                   " name to the gate's users)")
    return False, reason


def same_person(pusher: str, identifiers: Iterable[str]) -> bool:
    """Whether the name the registry gave for the pusher is one of these identifiers.

    Case-insensitive. An e-mail address (or UPN) also matches a bare name equal to its local
    part, either way round: `ann` pushed, `ann@example.com` approves, or the reverse. Two
    addresses match only whole (`ann@contoso.com` is not `ann@example.com`: the principal
    carries its own aliases). Object ids match object ids only, never a local part.
    """
    pushed = _fold(pusher)
    if not pushed:
        return False
    for identifier in (_fold(value) for value in identifiers):
        if identifier == pushed:
            return True
        if is_object_id(identifier) or is_object_id(pushed):
            continue
        if local_part(identifier) == pushed or local_part(pushed) == identifier:
            return True
    return False


def local_part(name: str) -> str | None:
    """`ann` of `ann@example.com` (casefolded); None for a name that is not an address."""
    local, at, domain = _fold(name).rpartition("@")
    return local if at and local and domain and "@" not in local else None


def is_object_id(name: str) -> bool:
    """Whether `name` is an Entra object id (a GUID)."""
    return _OBJECT_ID.fullmatch(_fold(name)) is not None


def _fold(value: str) -> str:
    return value.strip().casefold()


def _decode(encoded: str) -> dict[str, Any]:
    """The JSON object in X-MS-CLIENT-PRINCIPAL; IdentityError saying what is wrong with it."""
    text = encoded.strip()
    if not text:
        raise IdentityError("X-MS-CLIENT-PRINCIPAL is empty; expected base64 of the principal"
                            " JSON set by App Service Authentication")
    if len(text) > MAX_PRINCIPAL_HEADER:
        raise IdentityError(f"X-MS-CLIENT-PRINCIPAL is {len(text)} characters, over the"
                            f" {MAX_PRINCIPAL_HEADER} limit")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise IdentityError("X-MS-CLIENT-PRINCIPAL is not base64; expected base64 of the"
                            " principal JSON set by App Service Authentication") from None
    try:
        body = read_json(raw, limit=MAX_PRINCIPAL_HEADER, what="X-MS-CLIENT-PRINCIPAL")
    except JsonInputError as bad:
        raise IdentityError(f"{bad}; expected base64 of"
                            ' {"auth_typ", "name_typ", "role_typ", "claims": [...]}') from None
    if not isinstance(body, dict):
        raise IdentityError(f"X-MS-CLIENT-PRINCIPAL decodes to a JSON {type(body).__name__},"
                            " not an object with claims")
    return body


def _claims(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    claims = body.get("claims")
    if not isinstance(claims, list):
        raise IdentityError("X-MS-CLIENT-PRINCIPAL has no 'claims' list")
    pairs = []
    for index, claim in enumerate(claims):
        if not (isinstance(claim, dict) and isinstance(claim.get("typ"), str)
                and isinstance(claim.get("val"), str)):
            raise IdentityError(f"X-MS-CLIENT-PRINCIPAL claim {index} is not"
                                ' {"typ": text, "val": text}')
        pairs.append((claim["typ"], claim["val"]))
    return pairs


def _all(claims: list[tuple[str, str]], types: Iterable[str]) -> list[str]:
    wanted = {kind.casefold() for kind in types}
    return [value.strip() for kind, value in claims if kind.casefold() in wanted and value.strip()]


def _first(claims: list[tuple[str, str]], types: Iterable[str]) -> str | None:
    for kind in types:  # in order of preference
        if found := _all(claims, (kind,)):
            return found[0]
    return None


def _text_or(value: object, default: str) -> str:
    return value if isinstance(value, str) and value else default
