"""Orchestration versioning as the Durable Functions host applies it (host.json settings).

A new instance is stamped with `defaultVersion` (or the version its starter names); a
worker runs an instance only if its version matches under `versionMatchStrategy`, and
otherwise rejects the work (leaves it for a matching worker) or fails the instance, as
`versionFailureStrategy` says. Pure: the engine decides what to do with the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

# Both parse as .NET System.Version (2 to 4 numeric parts): compared part by part.
_DOTNET_VERSION = re.compile(r"^\d+(\.\d+){1,3}$")


class MatchStrategy(Enum):
    """Which instance versions a worker runs (`versionMatchStrategy`)."""

    NONE = "None"
    STRICT = "Strict"
    CURRENT_OR_OLDER = "CurrentOrOlder"


class FailureStrategy(Enum):
    """What a worker does with an instance it may not run (`versionFailureStrategy`)."""

    REJECT = "Reject"
    FAIL = "Fail"


def compare_versions(left: str | None, right: str | None) -> int:
    """<0, 0 or >0 as `left` is older than, equal to or newer than `right`.

    The host's rules: empty versions are equal and older than any other; two .NET-style
    versions compare numerically; anything else compares as text, ignoring case."""
    if not left and not right:
        return 0
    if not left:
        return -1
    if not right:
        return 1
    if _DOTNET_VERSION.match(left) and _DOTNET_VERSION.match(right):
        # System.Version counts a missing part as -1: 1.0 is older than 1.0.0.
        ours = [int(p) for p in left.split(".")] + [-1] * (4 - left.count(".") - 1)
        theirs = [int(p) for p in right.split(".")] + [-1] * (4 - right.count(".") - 1)
        return (ours > theirs) - (ours < theirs)
    a, b = left.casefold(), right.casefold()
    return (a > b) - (a < b)


@dataclass(frozen=True)
class VersionPolicy:
    """The app's `defaultVersion` and how it treats instances of other versions."""

    default_version: str | None = None
    match: MatchStrategy = MatchStrategy.CURRENT_OR_OLDER
    failure: FailureStrategy = FailureStrategy.REJECT

    @property
    def stamp(self) -> str:
        """The version a new instance gets when its starter names none."""
        return self.default_version or ""

    def version_for(self, requested: str | None) -> str:
        """An explicit version wins over `defaultVersion`."""
        return self.stamp if requested is None else requested

    def admits(self, version: str | None) -> bool:
        """Whether this worker may run an instance of `version`."""
        if self.match is MatchStrategy.STRICT:
            return (version or "") == self.stamp
        if self.match is MatchStrategy.CURRENT_OR_OLDER:
            return compare_versions(version, self.default_version) <= 0
        return True

    def refusal(self, version: str | None) -> str:
        """One line on why an instance of `version` is not run here."""
        rule = ("must equal" if self.match is MatchStrategy.STRICT
                else "must not be newer than")
        return (f"VersionMismatch: orchestration version {version or ''!r} {rule} this app's "
                f"defaultVersion {self.stamp!r} (versionMatchStrategy {self.match.value})")
