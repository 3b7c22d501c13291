"""Semantic versions read from image tags, and npm-style version ranges. Pure functions.

A tag is a version when it is `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]` (SemVer 2.0.0),
optionally after a `v`. OCI tags cannot hold `+`, so `_` also starts the build metadata
(`1.4.2_build.7`, as Helm writes it). Build metadata never affects ordering or ranges.
Partial versions (`1.4`) are not version tags.

Ranges follow node-semver: comparators (`>=1.2.0 <2.0.0`, commas also separate them),
`||` alternatives, hyphen ranges (`1.2 - 1.4`), X-ranges (`1.x`, `1.2.*`), caret (`^1.2.3`)
and tilde (`~1.2`). A pre-release version matches only a comparator set that names a
pre-release of the same MAJOR.MINOR.PATCH, unless pre-releases are included explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_VERSION = re.compile(
    rf"[vV]?(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:[+_](?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?")
_PART = rf"(?:{_NUMBER}|[xX*])"
_PARTIAL = re.compile(
    rf"[vV]?(?P<major>{_PART})(?:\.(?P<minor>{_PART})(?:\.(?P<patch>{_PART})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+{_BUILD_ID}(?:\.{_BUILD_ID})*)?)?)?")
_COMPARATOR = re.compile(r"(?P<op><=|>=|<|>|=|\^|~)?(?P<version>.*)")
_OPERATORS = ("<=", ">=", "<", ">", "=", "^", "~")

VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


@dataclass(frozen=True)
class Version:
    """A semantic version; `key()` orders versions by SemVer precedence."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @property
    def core(self) -> tuple[int, int, int]:
        return self.major, self.minor, self.patch

    def key(self) -> VersionKey:
        """Sort key: numbers numerically, a release after its pre-releases, build ignored."""
        identifiers = tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                            for part in self.prerelease)
        return self.major, self.minor, self.patch, 0 if self.prerelease else 1, identifiers

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


def parse_version(tag: str) -> Version | None:
    """The version a tag names (`v1.4.2`, `1.4.2-rc.1`, `1.4.2_build.7`), or None."""
    match = _VERSION.fullmatch(tag)
    if not match:
        return None
    pre, build = match["pre"], match["build"]
    return Version(int(match["major"]), int(match["minor"]), int(match["patch"]),
                   tuple(pre.split(".")) if pre else (), tuple(build.split(".")) if build else ())


def version_key(tag: str) -> VersionKey | None:
    """SemVer precedence key of a version tag; None for a tag that is not a version."""
    version = parse_version(tag)
    return version.key() if version else None


@dataclass(frozen=True)
class Comparator:
    """One bound such as `>=1.2.0` or `<2.0.0-0`."""

    operator: str
    version: Version

    def test(self, version: Version) -> bool:
        mine, theirs = version.key(), self.version.key()
        return {"<": mine < theirs, "<=": mine <= theirs, ">": mine > theirs,
                ">=": mine >= theirs, "=": mine == theirs}[self.operator]


@dataclass(frozen=True)
class VersionRange:
    """Alternatives (`||`) of comparator sets; an empty set admits every version."""

    text: str
    alternatives: tuple[tuple[Comparator, ...], ...]

    def contains(self, version: Version, include_prerelease: bool = False) -> bool:
        """Whether `version` is inside (pre-releases only as the module docstring says)."""
        for comparators in self.alternatives:
            if not all(comparator.test(version) for comparator in comparators):
                continue
            if not version.prerelease or include_prerelease:
                return True
            if any(c.version.prerelease and c.version.core == version.core for c in comparators):
                return True
        return False

    def __str__(self) -> str:
        return self.text


def parse_range(text: str) -> VersionRange:
    """Parse a range such as `>=1.2.0 <2`, `^1.4`, `1.x || 2.0.0-rc.1`; ValueError if invalid."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty version range")
    alternatives = tuple(_parse_set(part.strip(), text) for part in text.split("||"))
    return VersionRange(" ".join(text.split()), alternatives)


def _parse_set(text: str, whole: str) -> tuple[Comparator, ...]:
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise ValueError(f"empty alternative in version range {whole!r}")
    if len(tokens) == 3 and tokens[1] == "-":
        return _hyphen(_partial(tokens[0], whole), _partial(tokens[2], whole))
    merged: list[str] = []
    for token in tokens:  # `>= 1.2.0` is `>=1.2.0`
        if merged and merged[-1] in _OPERATORS:
            merged[-1] += token
        else:
            merged.append(token)
    if merged[-1] in _OPERATORS:
        raise ValueError(f"operator {merged[-1]!r} without a version in range {whole!r}")
    comparators: list[Comparator] = []
    for token in merged:
        match = _COMPARATOR.fullmatch(token)
        assert match is not None  # the pattern matches any text
        comparators.extend(_desugar(match["op"] or "=", _partial(match["version"], whole),
                                    token))
    return tuple(comparators)


_Partial = tuple[int | None, int | None, int | None, tuple[str, ...]]


def _partial(text: str, whole: str) -> _Partial:
    match = _PARTIAL.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a version in range {whole!r}")
    parts: list[int | None] = []
    for name in ("major", "minor", "patch"):
        value = match[name]
        parts.append(None if value is None or value in "xX*" or (parts and parts[-1] is None)
                     else int(value))
    pre = tuple(match["pre"].split(".")) if match["pre"] and parts[2] is not None else ()
    return parts[0], parts[1], parts[2], pre


def _at(major: int, minor: int = 0, patch: int = 0, pre: tuple[str, ...] = ()) -> Version:
    return Version(major, minor, patch, pre)


def _floor(major: int, minor: int = 0, patch: int = 0) -> Version:
    """The lowest version of a line, pre-releases included (node-semver's `-0`)."""
    return Version(major, minor, patch, ("0",))


def _desugar(op: str, partial: _Partial, token: str) -> list[Comparator]:
    major, minor, patch, pre = partial
    if major is None:
        if op in (">", "<"):
            raise ValueError(f"{token!r} admits no version")
        return []
    low = _at(major, minor or 0, patch or 0, pre)
    if op == "^":
        if minor is None or major > 0:
            high = _floor(major + 1)
        elif patch is None or minor > 0:
            high = _floor(0, minor + 1)
        else:
            high = _floor(0, 0, patch + 1)
        return [Comparator(">=", low), Comparator("<", high)]
    if op == "~" or (op == "=" and patch is None):
        high = _floor(major + 1) if minor is None else _floor(major, minor + 1)
        return [Comparator(">=", low), Comparator("<", high)]
    if op == "=":
        return [Comparator("=", low)]
    if op == ">":
        if minor is None:
            return [Comparator(">=", _at(major + 1))]
        if patch is None:
            return [Comparator(">=", _at(major, minor + 1))]
        return [Comparator(">", low)]
    if op == ">=":
        return [Comparator(">=", low)]
    if op == "<":
        return [Comparator("<", low if patch is not None else _floor(major, minor or 0))]
    # "<="
    return [_upper(major, minor, patch, pre)]


def _upper(major: int, minor: int | None, patch: int | None, pre: tuple[str, ...]) -> Comparator:
    if minor is None:
        return Comparator("<", _floor(major + 1))
    if patch is None:
        return Comparator("<", _floor(major, minor + 1))
    return Comparator("<=", _at(major, minor, patch, pre))


def _hyphen(low: _Partial, high: _Partial) -> tuple[Comparator, ...]:
    comparators: list[Comparator] = []
    if low[0] is not None:
        comparators.append(Comparator(">=", _at(low[0], low[1] or 0, low[2] or 0, low[3])))
    major, minor, patch, pre = high
    if major is not None:
        comparators.append(_upper(major, minor, patch, pre))
    return tuple(comparators)
