"""The pure rules of a retry: which releases may run again, and the input of the new run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from shared.ledger.records import ReleaseRecord, StageState
from shared.policy.versions import version_key
from shared.releases.retry import (
    ended_as,
    newer_release,
    policy_refusal,
    retry_input,
    retry_refusal,
)

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def row(release_id: str, version: str, day: int, state: str = "Failed", *,
        service: str = "delivery", reason: str | None = None,
        stages: dict[str, StageState] | None = None) -> ReleaseRecord:
    return ReleaseRecord(release_id=release_id, service=service, version=version,
                         digest="sha256:" + f"{day:x}" * 64, state=state,
                         created_at=T0 + timedelta(days=day),
                         updated_at=T0 + timedelta(days=day), environment="prod",
                         step=state, reason=reason, stages=stages or {})


FAILED = row("delivery-1", "v1.1.0", 1, reason="APPROVAL_SIGNING_KEY is not set")


def refusal(release: ReleaseRecord = FAILED, runtime: str | None = "Completed",
            outcome: str | None = "Failed", others: list[ReleaseRecord] | None = None
            ) -> str | None:
    return retry_refusal(release, runtime, outcome, [release, *(others or [])], version_key)


def test_a_failed_release_may_run_again() -> None:
    assert refusal() is None
    assert refusal(runtime="Failed", outcome=None) is None  # its orchestration crashed
    assert refusal(runtime=None, outcome=None) is None  # Durable forgot it; the ledger says


@pytest.mark.parametrize("runtime", ["Pending", "Running", "Suspended", "ContinuedAsNew"])
def test_not_while_it_runs(runtime: str) -> None:
    assert refusal(runtime=runtime, outcome=None) == (
        f"delivery-1 is running (Durable status {runtime}); it can be retried once it has"
        " ended Failed")


@pytest.mark.parametrize(("state", "runtime", "outcome", "words"), [
    ("Completed", "Completed", "Completed", "delivery-1 completed; there is nothing to retry"),
    ("Completed", None, None, "delivery-1 completed; there is nothing to retry"),
    ("RolledBack", "Completed", "RolledBack", "delivery-1 ended RolledBack (why);"
                                              " only a Failed release can be retried"),
    ("Rejected", "Completed", "Rejected", "ended Rejected"),
    ("Expired", "Completed", "Expired", "ended Expired"),
    ("Superseded", "Completed", "Superseded", "ended Superseded"),
    ("Failed", "Terminated", None, "ended Terminated"),
    ("Running", "Terminated", None, "ended Terminated"),
])
def test_only_failed_releases(state: str, runtime: str, outcome: str, words: str) -> None:
    release = row("delivery-1", "v1.1.0", 1, state, reason="why")
    assert words in (refusal(release, runtime, outcome) or "")


def test_not_once_a_person_rolled_it_back() -> None:
    kept = row("delivery-1", "v1.1.0", 1, stages={"prod": StageState(
        "RolledBack", T0, T0, "rolled back by ann@example.com (rollback:delivery:prod:1): bad")})
    assert refusal(kept) == (
        "delivery-1 was rolled back by ann@example.com (rollback:delivery:prod:1): bad in prod;"
        " a release a person rolled back is not run again")
    automatic = row("delivery-1", "v1.1.0", 1, stages={
        "prod": StageState("RolledBack", T0, T0, "rollout failed: CrashLoopBackOff")})
    assert refusal(automatic) is None


def test_not_once_a_newer_release_of_the_service_came() -> None:
    newer = row("delivery-2", "v1.2.0", 2, "WaitingForApproval")
    assert refusal(others=[newer]) == (
        "delivery-1 is superseded by delivery-2 (v1.2.0), a newer release of delivery")
    again = row("delivery-3", "v1.1.0", 3, "Failed")  # the same tag, pushed as another image
    assert "superseded by delivery-3 (v1.1.0)" in (refusal(others=[again]) or "")
    assert newer_release(FAILED, [FAILED, newer, again], version_key) == again


@pytest.mark.parametrize("other", [
    row("delivery-0", "v1.2.0", 0, "Completed"),            # created before it
    row("delivery-2", "v1.0.9", 2, "Completed"),            # a lower version (a hotfix line)
    row("other-2", "v9.0.0", 2, "Completed", service="other"),
    row("rollback:delivery:prod:1", "v1.0.0", 2, "Completed"),  # an operation's row
])
def test_what_does_not_supersede_it(other: ReleaseRecord) -> None:
    assert refusal(others=[other]) is None


def test_created_at_the_same_moment_the_higher_version_supersedes() -> None:
    same = [row("delivery-2", "v1.2.0", 1), row("delivery-3", "v1.0.0", 1),
            row("delivery-4", "build-7", 1)]
    assert newer_release(FAILED, same, version_key) == same[0]
    assert newer_release(same[0], [FAILED, *same], version_key) is None


def test_without_comparable_versions_the_later_one_supersedes() -> None:
    latest = row("delivery-1", "latest", 1)
    assert "superseded by delivery-2" in (
        retry_refusal(latest, "Completed", "Failed", [row("delivery-2", "build-7", 2)],
                      version_key) or "")


def test_how_it_ended() -> None:
    assert ended_as("Running", "Failed", None) == "Failed"
    assert ended_as("Failed", "Completed", "Failed") == "Failed"
    assert ended_as("Failed", "Completed", None) == "Failed"
    assert ended_as("Completed", None, None) == "Completed"


def service(tags: tuple[bool, str] = (True, "")) -> Any:
    return SimpleNamespace(name="delivery", repository="delivery",
                           accepts_tag=lambda tag: tags)


def test_the_policy_must_still_take_the_image() -> None:
    image = {"repository": "delivery", "tag": "v1.1.0"}
    assert policy_refusal(service(), image) is None
    assert policy_refusal(service(), {**image, "repository": "old/delivery"}) == (
        "the policy now takes delivery from repository delivery, not old/delivery; push the"
        " image there instead")
    assert policy_refusal(service((False, "v1.1.0 is below >=2.0.0")), image) == (
        "the policy no longer releases v1.1.0: v1.1.0 is below >=2.0.0")


def test_the_new_run_keeps_the_image_and_counts_retries() -> None:
    previous = {"releaseId": "delivery-1", "policy": {"old": True},
                "image": {"tag": "v1.1.0", "digest": "sha256:1", "pushedBy": "carol"},
                "trigger": {"eventId": "e1"}}
    after = {"releaseId": "delivery-1", "outcome": "Failed", "environment": None,
             "reason": "APPROVAL_SIGNING_KEY is not set"}
    first = retry_input(previous, {"new": True}, by="ann@example.com", reason="key set",
                        at=T0, after=after)
    assert first == {**previous, "policy": {"new": True}, "preflight": ["approvalSettings"],
                     "retries": [{"number": 1, "by": "ann@example.com",
                                  "at": T0.isoformat(), "reason": "key set",
                                  "after": {"outcome": "Failed", "environment": None,
                                            "reason": "APPROVAL_SIGNING_KEY is not set"}}]}
    second = retry_input(first, {"new": 2}, by="anonymous", reason="", at=T0, after={})
    assert [(r["number"], r["by"], r["reason"]) for r in second["retries"]] == [
        (1, "ann@example.com", "key set"), (2, "anonymous", None)]
    assert second["image"] == previous["image"] and "retries" not in previous
