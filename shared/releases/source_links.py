"""Compare links between two source revisions, for the hosting services we know. Pure.

GitHub (`https://github.com/o/r/compare/<old>...<new>`) and Azure Repos (`dev.azure.com`,
its SSH form, and the legacy `<org>.visualstudio.com`) from any of their clone URL forms
(`.git`, `git@…`, `ssh://`, trailing slashes). Any other host, a name with characters a
repository name never has, or a revision that is not a hex commit id gives no link and a
reason: a link is never guessed, and hostile input (`javascript:`, HTML) never becomes one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

REVISION = re.compile(r"^[0-9a-f]{7,64}$")
_GITHUB_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_AZURE_NAME = re.compile(r"^[A-Za-z0-9 ._-]{1,100}$")
_SCP = re.compile(r"^[A-Za-z0-9._-]+@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^:]+)$")


@dataclass(frozen=True)
class SourceRepository:
    """A repository on a hosting service we can link into."""

    host: str  # github, azure, visualstudio
    parts: tuple[str, ...]  # (owner, repo) or (organization, project, repo)

    @property
    def name(self) -> str:
        return "/".join(self.parts)

    def compare_url(self, old: str, new: str) -> str:
        """The page that shows the commits from `old` to `new` (both checked revisions)."""
        if self.host == "github":
            owner, repo = self.parts
            return f"https://github.com/{owner}/{repo}/compare/{old}...{new}"
        organization, project, repo = (quote(part) for part in self.parts)
        base = f"https://dev.azure.com/{organization}" if self.host == "azure" \
            else f"https://{organization}.visualstudio.com"
        return (f"{base}/{project}/_git/{repo}/branchCompare"
                f"?baseVersion=GC{old}&targetVersion=GC{new}")


def source_repository(source: str | None) -> SourceRepository | None:
    """The GitHub or Azure Repos repository a source URL names; None for anything else."""
    if not source or len(source) > 500 or any(c.isspace() for c in source.strip()):
        return None
    text = source.strip()
    scp = _SCP.match(text)
    if scp:
        host, path = scp.group("host").lower(), scp.group("path")
    else:
        parts = urlsplit(text)
        if parts.scheme.lower() not in ("https", "http", "ssh", "git", "git+ssh") \
                or parts.query or parts.fragment:
            return None
        host, path = (parts.hostname or "").lower(), parts.path
    segments = [unquote(s) for s in path.strip("/").split("/") if s]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][:-4]
    if host == "github.com":
        return _named("github", segments, _GITHUB_NAME) if len(segments) == 2 else None
    if host == "dev.azure.com" and len(segments) == 4 and segments[2] == "_git":
        return _named("azure", [segments[0], segments[1], segments[3]], _AZURE_NAME)
    if host == "ssh.dev.azure.com" and len(segments) == 4 and segments[0] == "v3":
        return _named("azure", segments[1:], _AZURE_NAME)
    if host.endswith(".visualstudio.com"):
        organization = host.removesuffix(".visualstudio.com")
        if segments[:1] == ["DefaultCollection"]:
            segments = segments[1:]
        if organization.startswith("vs-ssh") and len(segments) == 4 and segments[0] == "v3":
            return _named("visualstudio", segments[1:], _AZURE_NAME)
        if len(segments) == 3 and segments[1] == "_git":
            return _named("visualstudio", [organization, segments[0], segments[2]],
                          _AZURE_NAME)
    return None


def compare_link(source: str | None, old: str | None, new: str | None
                 ) -> tuple[str | None, str | None]:
    """(the compare URL, None), or (None, why there is no link)."""
    if not source:
        return None, "the image names no source repository"
    repository = source_repository(source)
    if repository is None:
        return None, "the source is not a GitHub or Azure Repos repository we can link to"
    for label, revision in (("running", old), ("proposed", new)):
        if not revision:
            return None, f"the {label} image's revision is unknown"
        if not REVISION.match(revision):
            return None, f"the {label} image's revision is not a commit id"
    assert old is not None and new is not None
    if old == new:
        return None, "both images were built from the same revision"
    return repository.compare_url(old, new), None


def _named(host: str, segments: list[str], pattern: re.Pattern[str]
           ) -> SourceRepository | None:
    if not all(pattern.match(s) and s not in (".", "..") for s in segments):
        return None
    return SourceRepository(host, tuple(segments))
