"""Which push supersedes a release of the same service that is still waiting, and which
earlier release a tag pushed again as another image overwrites."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.ingest.decisions import overwritten, supersedes
from shared.ledger import ReleaseRecord
from shared.policy.versions import version_key


@pytest.mark.parametrize("new, old, expected", [
    ("v1.1.0", "v1.0.0", True),     # a newer version
    ("v1.0.0", "v1.1.0", False),    # an older one never does
    ("v1.0.0", "v1.0.0", True),     # the same tag pushed again names another image
    ("1.0.0", "v1.0.0", True),      # the same version, spelled with or without the v
    ("v1.0.0-rc.1", "v1.0.0", False),  # a pre-release is older than its release
    ("main-abc123", "v1.0.0", True),   # no version to compare: the newer push wins
    ("v1.0.0", "main-abc123", True),
])
def test_supersedes(new: str, old: str, expected: bool) -> None:
    assert supersedes(new, old, version_key) is expected


def record(release_id: str, version: str, digest: str, state: str) -> ReleaseRecord:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    return ReleaseRecord(release_id, "delivery", version, digest, state, at, at)


def test_the_newest_earlier_release_of_the_same_tag_at_another_digest_is_overwritten() -> None:
    newest_first = [record("d-3", "v2.0.0", "sha256:c", "WaitingForApproval"),
                    record("d-2", "v1.0.0", "sha256:b", "Completed"),
                    record("d-1", "v1.0.0", "sha256:a", "RolledBack")]
    assert overwritten(newest_first, "v1.0.0", "sha256:z") == {
        "releaseId": "d-2", "digest": "sha256:b", "state": "Completed"}
    assert overwritten(newest_first, "v1.0.0", "sha256:b") == {
        "releaseId": "d-1", "digest": "sha256:a", "state": "RolledBack"}
    assert overwritten(newest_first, "1.0.0", "sha256:z") is None  # another tag, however equal
    assert overwritten([], "v1.0.0", "sha256:z") is None
