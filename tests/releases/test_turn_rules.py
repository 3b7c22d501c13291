"""Deploying in turn: who is deploying, operations first, never an older version over a newer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.ledger.records import ReleaseRecord, StageState
from shared.releases.turns import deploying, is_older, operation_deploying

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def row(release_id: str, state: str = "Deploying", row_state: str = "Running",
        environment: str = "prod") -> ReleaseRecord:
    return ReleaseRecord(release_id=release_id, service="delivery", version="v1.0.0",
                         digest="sha256:" + "a" * 64, state=row_state, created_at=T0,
                         updated_at=T0, stages={environment: StageState(state, started=T0)})


def test_deploying_means_running_with_that_stage_deploying() -> None:
    assert deploying(row("d-1"), "prod")
    assert not deploying(row("d-1"), "qa")
    assert not deploying(row("d-1", state="Healthy"), "prod")
    assert not deploying(row("d-1", row_state="Superseded"), "prod")
    assert not deploying(None, "prod")


def test_operation_deploying_ignores_releases_and_other_environments() -> None:
    rows = [row("d-1"), row("rollback:delivery:qa:1", environment="qa"),
            row("redeploy:delivery:prod:2", state="Healthy")]
    assert operation_deploying(rows, "prod") is None
    rows.append(row("rollback:delivery:prod:3"))
    assert operation_deploying(rows, "prod") == "rollback:delivery:prod:3"
    assert operation_deploying(rows, "prod", me="rollback:delivery:prod:3") is None


@pytest.mark.parametrize(("version", "running", "older"), [
    ("v1.0.0", "v1.1.0", True), ("1.1.0", "v1.1.0", False), ("v1.2.0", "v1.1.0", False),
    ("v1.1.0-rc.1", "v1.1.0", True), ("latest", "v1.1.0", False), ("v1.0.0", None, False),
    ("v1.0.0", "nightly", False),
])
def test_is_older_by_semver_precedence(version: str, running: str | None, older: bool) -> None:
    assert is_older(version, running) is older
