"""The process's memory of releases that exist: bounded, least recently seen forgotten first."""

from __future__ import annotations

import pytest

from shared.ingest.known import KnownReleases


def test_remembers_what_was_added_and_nothing_else() -> None:
    known = KnownReleases(capacity=3)
    known.add(("acct", "pfx", "hub", "delivery-a"))
    assert ("acct", "pfx", "hub", "delivery-a") in known
    assert ("acct", "pfx", "other-hub", "delivery-a") not in known
    assert ("acct", "other", "hub", "delivery-a") not in known


def test_forgets_the_least_recently_seen_beyond_its_capacity() -> None:
    known = KnownReleases(capacity=2)
    known.add("a")
    known.add("b")
    assert "a" in known  # seen again: now "b" is the oldest
    known.add("c")
    assert "b" not in known
    assert "a" in known and "c" in known
    assert len(known) == 2


def test_adding_again_keeps_one_entry() -> None:
    known = KnownReleases(capacity=2)
    for _ in range(3):
        known.add("a")
    assert len(known) == 1


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        KnownReleases(capacity=0)
