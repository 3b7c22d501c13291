"""Compare links for GitHub and Azure Repos from every clone URL form; none for anything
else, and never for hostile input."""

from __future__ import annotations

import pytest

from shared.releases.source_links import compare_link, source_repository

OLD = "0123456789abcdef0123456789abcdef01234567"
NEW = "fedcba9876543210fedcba9876543210fedcba98"
GITHUB = f"https://github.com/contoso/delivery/compare/{OLD}...{NEW}"
AZURE = (f"https://dev.azure.com/contoso/Shop/_git/delivery/branchCompare"
         f"?baseVersion=GC{OLD}&targetVersion=GC{NEW}")
LEGACY = (f"https://contoso.visualstudio.com/Shop/_git/delivery/branchCompare"
          f"?baseVersion=GC{OLD}&targetVersion=GC{NEW}")


@pytest.mark.parametrize("source", [
    "https://github.com/contoso/delivery",
    "https://github.com/contoso/delivery/",
    "https://github.com/contoso/delivery.git",
    "http://github.com/contoso/delivery",
    "https://GitHub.com/contoso/delivery",
    "git@github.com:contoso/delivery.git",
    "ssh://git@github.com/contoso/delivery.git",
    "git://github.com/contoso/delivery",
])
def test_github_sources_give_the_compare_page(source: str) -> None:
    assert compare_link(source, OLD, NEW) == (GITHUB, None)


@pytest.mark.parametrize("source", [
    "https://dev.azure.com/contoso/Shop/_git/delivery",
    "https://dev.azure.com/contoso/Shop/_git/delivery/",
    "https://contoso@dev.azure.com/contoso/Shop/_git/delivery",
    "git@ssh.dev.azure.com:v3/contoso/Shop/delivery",
    "ssh://git@ssh.dev.azure.com/v3/contoso/Shop/delivery",
])
def test_azure_repos_sources_give_the_branch_compare_page(source: str) -> None:
    assert compare_link(source, OLD, NEW) == (AZURE, None)


@pytest.mark.parametrize("source", [
    "https://contoso.visualstudio.com/Shop/_git/delivery",
    "https://contoso.visualstudio.com/DefaultCollection/Shop/_git/delivery.git",
    "contoso@vs-ssh.visualstudio.com:v3/contoso/Shop/delivery",
])
def test_legacy_visualstudio_sources_keep_their_host(source: str) -> None:
    assert compare_link(source, OLD, NEW) == (LEGACY, None)


def test_a_project_name_with_a_space_is_encoded() -> None:
    url, _ = compare_link("https://dev.azure.com/contoso/My%20Shop/_git/delivery", OLD, NEW)
    assert url is not None and url.startswith("https://dev.azure.com/contoso/My%20Shop/_git/")


@pytest.mark.parametrize("source", [
    "https://gitlab.com/contoso/delivery",
    "https://bitbucket.org/contoso/delivery",
    "https://github.com/contoso",
    "https://github.com/contoso/delivery/tree/main",
    "https://github.example.com/contoso/delivery",
    "https://evilgithub.com/contoso/delivery",
    "https://github.com.evil.test/contoso/delivery",
    "https://dev.azure.com/contoso/Shop/delivery",
    "file:///srv/git/delivery",
])
def test_other_hosts_and_shapes_give_no_link(source: str) -> None:
    url, why = compare_link(source, OLD, NEW)
    assert url is None
    assert why == "the source is not a GitHub or Azure Repos repository we can link to"


@pytest.mark.parametrize("source", [
    "javascript:alert(1)//github.com/contoso/delivery",
    "javascript://github.com/contoso/delivery",
    "data:text/html,<script>alert(1)</script>",
    "https://github.com/contoso/<script>alert(1)</script>",
    "https://github.com/contoso/deli\"very",
    "https://github.com/contoso/del ivery",
    "https://github.com/contoso/%3Cb%3E",
    "https://github.com/contoso/delivery?x=1",
    "https://github.com/contoso/..",
    "https://dev.azure.com/contoso/Sh'op/_git/delivery",
])
def test_hostile_sources_never_become_a_link(source: str) -> None:
    assert compare_link(source, OLD, NEW)[0] is None
    assert source_repository(source) is None


@pytest.mark.parametrize(("old", "new", "why"), [
    (None, NEW, "the running image's revision is unknown"),
    (OLD, None, "the proposed image's revision is unknown"),
    ("main", NEW, "the running image's revision is not a commit id"),
    (OLD, "v1.2.3", "the proposed image's revision is not a commit id"),
    (OLD, "<script>", "the proposed image's revision is not a commit id"),
    (OLD.upper(), NEW, "the running image's revision is not a commit id"),
    (OLD, OLD, "both images were built from the same revision"),
])
def test_revisions_must_be_two_different_commit_ids(old: str | None, new: str | None,
                                                    why: str) -> None:
    assert compare_link("https://github.com/contoso/delivery", old, new) == (None, why)


def test_a_short_commit_id_is_linked() -> None:
    url, _ = compare_link("https://github.com/contoso/delivery", "0123456", "89abcde")
    assert url == "https://github.com/contoso/delivery/compare/0123456...89abcde"


def test_no_source_says_so() -> None:
    assert compare_link(None, OLD, NEW) == (None, "the image names no source repository")
    assert compare_link("", OLD, NEW) == (None, "the image names no source repository")
