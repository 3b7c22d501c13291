"""HTTP trigger route templates: parsing, matching and precedence (no I/O).

Follows ASP.NET Core route templates as the Functions host uses them:
literal segments match case-insensitively; `{name}`, optional `{name?}` (whole
segment, trailing), catch-all `{*name}`/`{**name}` (last segment), complex
segments like `{name}.{ext}`, and constraints `int long alpha bool guid double
float decimal datetime min() max() range() minlength() maxlength() length()
regex()`. Default values (`{id=5}`) are not supported.

A path that matches a route whose methods exclude the request method is not
answered with 405: the Functions host answers 404, and so does devhost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX_D = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID_FORMATS = tuple(re.compile(p) for p in (
    r"[0-9a-fA-F]{32}", _HEX_D, r"\{" + _HEX_D + r"\}", r"\(" + _HEX_D + r"\)"))


class RouteError(ValueError):
    """A route template that cannot be parsed."""


def _in_range(value: str, low: int, high: int) -> bool:
    return bool(_INTEGER.fullmatch(value)) and low <= int(value) <= high


def _is_guid(value: str) -> bool:
    """Guid.TryParse formats N, D, B and P."""
    return any(p.fullmatch(value) for p in _GUID_FORMATS)


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _int_args(name: str, args: str, count: int) -> list[int]:
    parts = [a.strip() for a in args.split(",")] if args else []
    if len(parts) != count or not all(_INTEGER.fullmatch(p) for p in parts):
        raise RouteError(f"constraint {name} needs {count} integer argument(s), got ({args})")
    return [int(p) for p in parts]


def make_constraint(name: str, args: str | None) -> Callable[[str], bool]:
    """A predicate for one `:name(args)` constraint; RouteError if unknown."""
    key = name.lower()
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _in_range(v, *INT32),
        "long": lambda v: _in_range(v, *INT64),
        "alpha": lambda v: v.isascii() and v.isalpha(),
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": _is_guid,
        "double": lambda v: bool(_NUMBER.fullmatch(v)),
        "float": lambda v: bool(_NUMBER.fullmatch(v)),
        "decimal": lambda v: bool(_NUMBER.fullmatch(v)),
        "datetime": _is_datetime,
    }
    if key in simple:
        if args is not None:
            raise RouteError(f"constraint {name} takes no arguments")
        return simple[key]
    if key == "regex":
        if not args:
            raise RouteError("constraint regex needs a pattern")
        try:
            pattern = re.compile(args, re.IGNORECASE)
        except re.error as error:
            raise RouteError(f"constraint regex({args}): {error}") from None
        return lambda v: pattern.search(v) is not None
    if key in ("min", "max", "minlength", "maxlength"):
        (bound,) = _int_args(name, args or "", 1)
        return {
            "min": lambda v: _in_range(v, *INT64) and int(v) >= bound,
            "max": lambda v: _in_range(v, *INT64) and int(v) <= bound,
            "minlength": lambda v: len(v) >= bound,
            "maxlength": lambda v: len(v) <= bound,
        }[key]
    if key == "range":
        low, high = _int_args(name, args or "", 2)
        return lambda v: _in_range(v, *INT64) and low <= int(v) <= high
    if key == "length":
        parts = _int_args(name, args or "", 2 if args and "," in args else 1)
        low, high = (parts[0], parts[0]) if len(parts) == 1 else parts
        return lambda v: low <= len(v) <= high
    raise RouteError(f"unknown route constraint '{name}'")


@dataclass(frozen=True)
class Param:
    """One `{...}` route parameter."""

    name: str
    constraints: tuple[Callable[[str], bool], ...] = ()
    optional: bool = False
    catch_all: bool = False
    spec: str = ""  # the constraints as written, to tell routes apart

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.constraints)


@dataclass(frozen=True)
class Segment:
    """A path segment: literal text and parameters in order."""

    parts: tuple[str | Param, ...]

    @property
    def param(self) -> Param | None:
        """The parameter when the segment is exactly one parameter."""
        only = self.parts[0] if len(self.parts) == 1 else None
        return only if isinstance(only, Param) else None

    @property
    def rank(self) -> int:
        """Precedence: literal 1, complex 2, constrained 3, plain 4, catch-all 5."""
        if all(isinstance(p, str) for p in self.parts):
            return 1
        param = self.param
        if param is None:
            return 2
        if param.catch_all:
            return 5
        return 3 if param.constraints else 4

    def pattern(self) -> re.Pattern[str]:
        # Greedy groups: `{name}.{ext}` splits `a.b.pdf` at the last dot, as ASP.NET does.
        regex = "".join(re.escape(p) if isinstance(p, str) else "(.+)" for p in self.parts)
        return re.compile(regex, re.IGNORECASE | re.DOTALL)


def _split_constraints(body: str) -> list[str]:
    """Split `name:c1:c2(x:y)` on colons outside parentheses."""
    pieces, depth, current = [], 0, ""
    for char in body:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == ":" and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    return pieces


def _parse_param(body: str, template: str) -> Param:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    optional = body.endswith("?")
    body = body.removesuffix("?")
    if "=" in body:
        raise RouteError(f"route '{template}': default values ({{{body}}}) are not supported")
    name, *raw_constraints = _split_constraints(body)
    if not _NAME.fullmatch(name):
        raise RouteError(f"route '{template}': invalid parameter name '{name}'")
    constraints = []
    for raw in raw_constraints:
        match = re.fullmatch(r"(\w+)(?:\((.*)\))?", raw, re.DOTALL)
        if not match:
            raise RouteError(f"route '{template}': invalid constraint '{raw}'")
        args = match.group(2)
        if args is not None:
            args = args.replace("{{", "{").replace("}}", "}")  # braces are doubled in templates
        try:
            constraints.append(make_constraint(match.group(1), args))
        except RouteError as error:
            raise RouteError(f"route '{template}': {error}") from None
    spec = ":".join(c.lower() for c in raw_constraints)
    return Param(name, tuple(constraints), optional, catch_all, spec)


def _parse_segment(text: str, template: str) -> Segment:
    parts: list[str | Param] = []
    position = 0
    while position < len(text):
        start = text.find("{", position)
        if start < 0:
            parts.append(text[position:])
            break
        if start > position:
            parts.append(text[position:start])
        depth, end = 0, start
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        if depth != 0:
            raise RouteError(f"route '{template}': unbalanced braces in '{text}'")
        parts.append(_parse_param(text[start + 1:end], template))
        position = end + 1
    pairs = zip(parts, parts[1:], strict=False)
    if any(isinstance(a, Param) and isinstance(b, Param) for a, b in pairs):
        raise RouteError(f"route '{template}': parameters in '{text}' need a literal "
                         "between them")
    segment = Segment(tuple(parts))
    params = [p for p in parts if isinstance(p, Param)]
    if any(p.optional or p.catch_all for p in params) and segment.param is None:
        raise RouteError(f"route '{template}': optional and catch-all parameters must be "
                         "a whole segment")
    return segment


class RouteTemplate:
    """A parsed route template such as `orders/{id:int}/items/{*rest}`."""

    def __init__(self, template: str) -> None:
        self.template = template
        text = template.strip("/")
        self.segments = tuple(_parse_segment(s, template) for s in text.split("/")) if text else ()
        names = [p.name.lower() for s in self.segments for p in s.parts if isinstance(p, Param)]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise RouteError(f"route '{template}': parameter {sorted(duplicates)[0]} "
                             "appears twice")
        for index, segment in enumerate(self.segments):
            param = segment.param
            if param and param.catch_all and index != len(self.segments) - 1:
                raise RouteError(f"route '{template}': a catch-all parameter must be last")
            if param and param.optional and any(
                    not (s.param and (s.param.optional or s.param.catch_all))
                    for s in self.segments[index + 1:]):
                raise RouteError(f"route '{template}': only trailing parameters can be "
                                 "optional")
        self._patterns = tuple(s.pattern() for s in self.segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key, lower first: per-segment ranks, so literals beat parameters and a
        template that is a prefix of another (`a` vs `a/{id?}`) wins."""
        return tuple(s.rank for s in self.segments)

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a raw (still percent-encoded) path, or None."""
        raw = path.strip("/")
        pieces = raw.split("/") if raw else []
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            param = segment.param
            if param and param.catch_all:
                rest = unquote("/".join(pieces[index:]))
                if rest and not param.accepts(rest):
                    return None
                if rest:
                    values[param.name] = rest
                return values
            if index >= len(pieces):
                if param and param.optional:
                    continue
                return None
            text = unquote(pieces[index])
            found = self._patterns[index].fullmatch(text)
            if not found:
                return None
            params = [p for p in segment.parts if isinstance(p, Param)]
            for param_, value in zip(params, found.groups(), strict=True):
                if not param_.accepts(value):
                    return None
                values[param_.name] = value
        return values if len(pieces) <= len(self.segments) else None


@dataclass(frozen=True)
class Route(Generic[T]):
    """A template bound to a target (the function) and its allowed methods."""

    template: RouteTemplate
    methods: frozenset[str] | None
    target: T

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    """The chosen route and its values."""

    route: Route[T]
    values: dict[str, str]


class RouteTable(Generic[T]):
    """Routes ordered by precedence; the first that matches path and method wins."""

    def __init__(self) -> None:
        self._routes: list[Route[T]] = []

    def add(self, template: str, methods: Iterable[str] | None, target: T) -> Route[T]:
        """Add a route; RouteError if it duplicates one with an overlapping method."""
        parsed = RouteTemplate(template)
        allowed = frozenset(m.upper() for m in methods) if methods else None
        route = Route(parsed, allowed, target)
        for other in self._routes:
            same = _canonical(other.template) == _canonical(parsed)
            overlap = (other.methods is None or allowed is None
                       or bool(other.methods & allowed))
            if same and overlap:
                raise RouteError(f"route '{template}' is declared twice "
                                 f"(also by {getattr(other.target, 'name', other.target)})")
        self._routes.append(route)
        self._routes.sort(key=lambda r: r.template.precedence)
        return route

    @property
    def routes(self) -> Sequence[Route[T]]:
        return tuple(self._routes)

    def resolve(self, path: str, method: str) -> tuple[RouteMatch[T] | None, bool]:
        """(match, path_known): path_known tells a method mismatch from an unknown path."""
        path_known = False
        for route in self._routes:
            values = route.template.match(path)
            if values is None:
                continue
            path_known = True
            if route.allows(method):
                return RouteMatch(route, values), True
        return None, path_known


def _canonical(template: RouteTemplate) -> str:
    return "/".join(
        "".join(p.lower() if isinstance(p, str) else _param_shape(p) for p in s.parts)
        for s in template.segments)


def _param_shape(param: Param) -> str:
    star = "*" if param.catch_all else ""
    mark = "?" if param.optional else ""
    return f"{{{star}:{param.spec}{mark}}}"
