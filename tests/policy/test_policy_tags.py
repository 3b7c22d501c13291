"""Tag acceptance, semver parsing, ranges and ordering, durations."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from shared.policy import TagFilter, parse_range, parse_version, version_key
from shared.policy.durations import format_duration, parse_duration


def accepts(tag: str, **settings: object) -> tuple[bool, str]:
    return TagFilter(**settings).accepts(tag)


# --- latest -------------------------------------------------------------------------------


def test_latest_is_ignored_by_default() -> None:
    assert accepts("latest") == (False, "tag 'latest' is ignored (allowLatest is false)")


def test_latest_is_accepted_when_allowed_and_nothing_else_filters() -> None:
    assert accepts("latest", allow_latest=True) == (True, "")


def test_only_the_exact_tag_latest_is_special() -> None:
    assert accepts("Latest") == (True, "")
    assert accepts("latest-1") == (True, "")


def test_without_filters_any_other_tag_is_accepted() -> None:
    assert accepts("main-4f2a9c1") == (True, "")


# --- regex only ---------------------------------------------------------------------------


def test_pattern_must_match_the_whole_tag() -> None:
    assert accepts("release-12", pattern=r"release-\d+") == (True, "")
    assert accepts("release-12-hotfix", pattern=r"release-\d+") == (
        False, "tag 'release-12-hotfix' does not match pattern 'release-\\d+'")
    assert accepts("xrelease-12", pattern=r"release-\d+")[0] is False


def test_pattern_alone_accepts_pre_releases_and_non_versions() -> None:
    assert accepts("1.2.0-rc.1", pattern=r".*") == (True, "")
    assert accepts("nightly", pattern=r"nightly|stable") == (True, "")


# --- semver only --------------------------------------------------------------------------


def test_range_rejects_versions_outside() -> None:
    assert accepts("0.9.0", semver=">=1.0.0") == (False, "version 0.9.0 is outside >=1.0.0")
    assert accepts("2.0.0", semver=">=1.0.0 <2.0.0") == (
        False, "version 2.0.0 is outside >=1.0.0 <2.0.0")
    assert accepts("1.9.9", semver=">=1.0.0 <2.0.0") == (True, "")


def test_range_needs_a_version_tag() -> None:
    assert accepts("main", semver=">=1.0.0") == (
        False, "tag 'main' is not a semantic version (semver range >=1.0.0 needs one)")
    assert accepts("1.2", semver=">=1.0.0")[0] is False


def test_v_prefix_is_a_version() -> None:
    assert accepts("v1.4.2", semver="^1.4") == (True, "")
    assert accepts("V1.4.2", semver="^1.4") == (True, "")
    assert accepts("v0.9.0", semver=">=1.0.0") == (False, "version 0.9.0 is outside >=1.0.0")


def test_pre_release_needs_the_range_to_name_one_or_include_prerelease() -> None:
    assert accepts("1.2.0-rc.1", semver=">=1.0.0") == (
        False, "version 1.2.0-rc.1 is a pre-release outside >=1.0.0 (name a pre-release of"
               " the same version in the range, or set includePrerelease)")
    assert accepts("1.2.0-rc.1", semver=">=1.0.0", include_prerelease=True) == (True, "")
    assert accepts("1.2.0-rc.2", semver=">=1.2.0-rc.1") == (True, "")
    assert accepts("1.3.0-rc.1", semver=">=1.2.0-rc.1")[0] is False
    assert accepts("1.3.0", semver=">=1.2.0-rc.1") == (True, "")


def test_pre_release_of_the_upper_bound_is_outside_even_when_included() -> None:
    assert accepts("2.0.0-rc.1", semver="^1.0.0", include_prerelease=True) == (
        False, "version 2.0.0-rc.1 is outside ^1.0.0")


def test_build_metadata_is_ignored_by_ranges() -> None:
    assert accepts("1.2.3_build.7", semver="1.2.3") == (True, "")
    assert accepts("1.2.3+build.7", semver="<=1.2.3") == (True, "")
    assert accepts("1.2.4_build.7", semver="<=1.2.3")[0] is False


# --- both ---------------------------------------------------------------------------------


def test_pattern_and_range_both_apply() -> None:
    both = {"pattern": r"v.*", "semver": ">=1.0.0"}
    assert accepts("v1.2.3", **both) == (True, "")
    assert accepts("1.2.3", **both) == (False, "tag '1.2.3' does not match pattern 'v.*'")
    assert accepts("v0.1.0", **both) == (False, "version 0.1.0 is outside >=1.0.0")
    assert accepts("latest", allow_latest=False, **both)[1] == \
        "tag 'latest' is ignored (allowLatest is false)"


# --- version parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "text"), [
    ("1.2.3", "1.2.3"), ("v1.2.3", "1.2.3"), ("1.0.0-alpha.1", "1.0.0-alpha.1"),
    ("1.0.0-0.3.7", "1.0.0-0.3.7"), ("1.0.0-x-y-z.--", "1.0.0-x-y-z.--"),
    ("1.0.0+20130313144700", "1.0.0+20130313144700"), ("1.0.0_exp.sha.5114f85",
                                                        "1.0.0+exp.sha.5114f85"),
    ("1.0.0-beta_exp.sha.5114f85", "1.0.0-beta+exp.sha.5114f85"),
])
def test_version_tags(tag: str, text: str) -> None:
    version = parse_version(tag)
    assert version is not None and str(version) == text


@pytest.mark.parametrize("tag", [
    "latest", "main", "1.2", "1", "01.2.3", "1.02.3", "1.2.3-01", "1.2.3-", "1.2.3+",
    "v", "vv1.2.3", "1.2.3.4", "sha-4f2a9c1", "1.2.3-rc..1",
])
def test_not_version_tags(tag: str) -> None:
    assert parse_version(tag) is None
    assert version_key(tag) is None


def test_version_ordering_follows_semver_precedence() -> None:
    ordered = ["0.9.0", "1.0.0-0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
               "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "v1.0.1",
               "1.2.0", "1.9.0", "1.10.0", "2.0.0"]
    shuffled = ordered[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == ordered


def test_v_prefix_and_build_metadata_do_not_change_the_key() -> None:
    assert version_key("v1.4.2") == version_key("1.4.2") == version_key("1.4.2_build.9")
    assert version_key("1.4.2-rc.1") < version_key("1.4.2")


def test_service_version_key_is_the_same_function() -> None:
    from shared.policy import Service

    assert Service.version_key("v2.0.0") == version_key("2.0.0")
    assert Service.version_key("latest") is None


# --- ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "inside", "outside"), [
    (">=1.0.0 <2.0.0", ["1.0.0", "1.99.99"], ["0.9.9", "2.0.0"]),
    (">=1.0.0, <2.0.0", ["1.5.0"], ["2.0.0"]),
    (">= 1.0.0 < 2", ["1.5.0"], ["2.0.0"]),
    ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("^1.2", ["1.2.0", "1.9.0"], ["1.1.9", "2.0.0"]),
    ("^0", ["0.0.1", "0.9.9"], ["1.0.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
    ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
    ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("1.x", ["1.0.0", "1.9.9"], ["2.0.0", "0.9.0"]),
    ("1.2.*", ["1.2.0", "1.2.7"], ["1.3.0"]),
    ("1", ["1.4.0"], ["2.0.0"]),
    ("*", ["0.0.0", "9.9.9"], ["1.0.0-rc.1"]),
    ("1.2.3", ["1.2.3", "v1.2.3"], ["1.2.4"]),
    ("=1.2.3", ["1.2.3"], ["1.2.4"]),
    (">1.2.3", ["1.2.4"], ["1.2.3"]),
    (">1.2", ["1.3.0"], ["1.2.9"]),
    (">1", ["2.0.0"], ["1.9.9"]),
    ("<1.2", ["1.1.9"], ["1.2.0"]),
    ("<=1.2", ["1.2.9"], ["1.3.0"]),
    ("<=1", ["1.9.9"], ["2.0.0"]),
    ("1.2.3 - 2.3.4", ["1.2.3", "2.3.4"], ["1.2.2", "2.3.5"]),
    ("1.2 - 2.3", ["1.2.0", "2.3.9"], ["2.4.0"]),
    ("1.2.3 - 2", ["2.9.9"], ["3.0.0"]),
    ("<1.0.0 || >=2.0.0 <3", ["0.5.0", "2.5.0"], ["1.5.0", "3.0.0"]),
])
def test_ranges(text: str, inside: list[str], outside: list[str]) -> None:
    version_range = parse_range(text)
    for tag in inside:
        assert version_range.contains(parse_version(tag)), f"{tag} should be in {text}"
    for tag in outside:
        assert not version_range.contains(parse_version(tag)), f"{tag} should not be in {text}"


@pytest.mark.parametrize("text", [
    "", "   ", ">=", ">=1.0.0 <", "banana", "1.2.3 -", ">=1.0.0 ||", "~>1.2", ">*",
    "1.2.3.4", "^^1",
])
def test_invalid_ranges(text: str) -> None:
    with pytest.raises(ValueError):
        parse_range(text)


def test_range_text_is_normalised_for_messages() -> None:
    assert str(parse_range("  >=1.0.0    <2 ")) == ">=1.0.0 <2"


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("24h", 86400), ("3d", 259200), ("1h30m", 5400),
    ("1d12h", 129600), (" 5m ", 300),
])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["72x", "", "h", "1.5h", "-1h", "30m1h", "1 h", 30, True,
                                   None, "0s"])
def test_invalid_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_durations_format_back() -> None:
    assert format_duration(timedelta(hours=72)) == "3d"
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert parse_duration(format_duration(timedelta(seconds=93784))) == \
        timedelta(seconds=93784)
