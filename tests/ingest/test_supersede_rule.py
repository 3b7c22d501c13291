"""Which push supersedes a release of the same service that is still waiting."""

from __future__ import annotations

import pytest

from shared.ingest.decisions import supersedes
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
