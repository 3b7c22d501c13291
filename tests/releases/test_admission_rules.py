"""The admission rules of rollbacks, redeploys and retries: which refusal, and its words."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.ledger.records import Deployment, ReleaseRecord, StageState
from shared.policy import parse_policy
from shared.releases.admission import (
    CONFLICT,
    INVALID,
    NOT_FOUND,
    Refusal,
    check_names_a_release,
    check_no_operation_running,
    check_not_deploying,
    check_retry,
    check_rollback_target,
    check_runs_there,
    check_was_deployed,
    found,
    how_it_ended,
    live_plan,
    replaced,
    snapshot_image,
    stage_of,
)
from shared.releases.operations import Deployed
from tests.policy.policy_samples import BASE

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
POLICY = parse_policy(BASE, source="policy.yaml")
SERVICE = POLICY.service("delivery")
DIGEST = "sha256:" + "1" * 64


def row(release_id: str, version: str = "v1.0.0", state: str = "Completed",
        **stages: str) -> ReleaseRecord:
    return ReleaseRecord(release_id=release_id, service="delivery", version=version,
                         digest=DIGEST, state=state, created_at=T0, updated_at=T0,
                         environment="prod", reason="why" if state != "Completed" else None,
                         stages={env: StageState(s, started=T0, finished=T0)
                                 for env, s in stages.items()})


def deployment(release_id: str) -> Deployment:
    return Deployment(release_id, "sha256:" + "2" * 64, f"r.example/prod/delivery@{release_id}",
                      T0)


@contextmanager
def refused(kind: str, words: str) -> Iterator[pytest.ExceptionInfo[Refusal]]:
    """The block raises a Refusal of `kind` whose reason is exactly `words`."""
    with pytest.raises(Refusal) as raised:
        yield raised
    assert (raised.value.kind, raised.value.reason) == (kind, words)


def snapshot(release_id: str = "d-1", digest: str = DIGEST) -> dict[str, Any]:
    return {"releaseId": release_id, "policy": SERVICE.snapshot(),
            "image": {"tag": "v1.0.0", "digest": digest, "repository": "delivery"}}


class TestTheRelease:
    def test_an_operation_is_not_a_release(self) -> None:
        check_names_a_release("delivery-0123456789abcdef")
        with pytest.raises(Refusal) as refusal:
            check_names_a_release("rollback:delivery:prod:1")
        assert refusal.value.kind == INVALID
        assert refusal.value.reason == ("rollback:delivery:prod:1 is an operation, not a "
                                        "release; name the release it deployed")

    def test_an_unknown_release_is_not_found(self) -> None:
        assert found("d-1", row("d-1")) == row("d-1")
        with pytest.raises(Refusal) as refusal:
            found("d-9", None)
        assert (refusal.value.kind, refusal.value.reason) == (NOT_FOUND, "no release 'd-9'")

    def test_an_environment_the_plan_lacks_names_the_ones_it_has(self) -> None:
        plan = live_plan(row("d-1"), SERVICE.snapshot())
        assert stage_of(plan, "prod").name == "prod"
        with pytest.raises(Refusal) as refusal:
            stage_of(plan, "  staging\n" + "x" * 100)
        assert refusal.value.kind == INVALID
        assert refusal.value.reason == (f"d-1 has no environment {'staging ' + 'x' * 72!r} "
                                        "(its environments: qa, prod)")


class TestPlansAndImages:
    def test_a_live_plan_is_the_release_under_todays_service(self) -> None:
        plan = live_plan(row("d-1", "v1.2.0"), SERVICE.snapshot())
        assert (plan.release_id, plan.service, plan.version, plan.digest) == \
            ("d-1", "delivery", "v1.2.0", DIGEST)
        assert [stage.name for stage in plan.stages] == ["qa", "prod"]
        assert plan.image_in(plan.stages[1]) == f"myacr.azurecr.io/prod/delivery@{DIGEST}"

    def test_an_image_comes_from_the_targets_own_snapshot(self) -> None:
        plan = live_plan(row("d-2"), SERVICE.snapshot())
        own = snapshot("d-1", "sha256:" + "3" * 64)
        own["policy"]["environments"][1]["image"]["repository"] = "elsewhere/delivery"
        prod = plan.stages[1]
        assert snapshot_image(own, plan, prod, "sha256:" + "4" * 64) == \
            "myacr.azurecr.io/elsewhere/delivery@sha256:" + "3" * 64

    def test_without_a_snapshot_the_digest_is_placed_by_the_plan(self) -> None:
        plan = live_plan(row("d-2"), SERVICE.snapshot())
        digest = "sha256:" + "4" * 64
        assert snapshot_image(None, plan, plan.stages[1], digest) == \
            f"myacr.azurecr.io/prod/delivery@{digest}"
        other = snapshot()
        other["policy"]["environments"] = other["policy"]["environments"][:1]  # no prod there
        assert snapshot_image(other, plan, plan.stages[1], digest) == \
            f"myacr.azurecr.io/prod/delivery@{digest}"


class TestRollback:
    def test_only_from_what_runs_there(self) -> None:
        current = deployment("d-2")
        assert check_runs_there(row("d-2"), "prod", current) == current
        with refused(CONFLICT, "d-1 is not what runs in prod (d-2 runs there); roll back "
                               "the release that runs there"):
            check_runs_there(row("d-1"), "prod", current)
        with refused(CONFLICT, "d-1 is not what runs in prod (nothing is recorded there); "
                               "roll back the release that runs there"):
            check_runs_there(row("d-1"), "prod", None)

    def test_only_to_an_earlier_good_release(self) -> None:
        target = row("d-1")
        assert check_rollback_target(row("d-2"), "prod", target) == target
        with refused(CONFLICT, "no earlier good release of delivery in prod to roll back to "
                               "(none other than d-2 is recorded there as deployed and "
                               "verified)"):
            check_rollback_target(row("d-2"), "prod", None)


class TestRedeploy:
    def test_only_what_ran_there(self) -> None:
        check_was_deployed(row("d-1", prod="Healthy"), "prod", True)
        with refused(CONFLICT, "d-1 was never deployed to prod (its prod stage is Rejected); "
                               "a redeploy puts back only what ran there and skips no gate"):
            check_was_deployed(row("d-1", prod="Rejected"), "prod", False)
        with refused(CONFLICT, "d-1 was never deployed to prod (it never reached prod); a "
                               "redeploy puts back only what ran there and skips no gate"):
            check_was_deployed(row("d-1", qa="Failed"), "prod", False)

    def test_what_it_replaces_takes_its_version_from_the_rows(self) -> None:
        assert replaced(None, [row("d-1")]) is None
        current = deployment("d-2")
        assert replaced(current, [row("d-1"), row("d-2", "v2.0.0")]) == \
            Deployed("d-2", "v2.0.0", current.digest, current.image)
        assert replaced(current, []) == Deployed("d-2", "", current.digest, current.image)


class TestNothingElseDeploysThere:
    @pytest.mark.parametrize("runtime", ["Pending", "Running", "ContinuedAsNew", "Suspended"])
    def test_an_active_operation_of_the_environment_refuses(self, runtime: str) -> None:
        instances = [("rollback:delivery:prod:1", "Completed"),
                     ("redeploy:delivery:prod:2", runtime)]
        with refused(CONFLICT, "operation redeploy:delivery:prod:2 is still running in prod; "
                               "wait for it to finish"):
            check_no_operation_running(instances, "delivery", "prod")

    def test_ended_operations_and_sub_orchestrations_do_not(self) -> None:
        check_no_operation_running([("rollback:delivery:prod:1", "Failed"),
                                    ("rollback:delivery:prod:1:deploy", "Running"),
                                    ("rollback:delivery:prod-eu:1", "Running"),
                                    ("redeploy:delivery:prod:3", None)], "delivery", "prod")

    def test_a_release_deploying_there_refuses_while_it_runs(self) -> None:
        with refused(CONFLICT, "d-1 is deploying to prod right now; wait for it to finish"):
            check_not_deploying("d-1", "prod", "Running")
        for runtime in ("Completed", "Failed", "Terminated", None):
            check_not_deploying("d-1", "prod", runtime)


class TestRetry:
    def retry(self, *, runtime: str | None = "Completed", outcome: str | None = "Failed",
              previous: Any = None, service: Any = SERVICE, release: ReleaseRecord | None = None
              ) -> None:
        failed = release or row("delivery-1", "v1.1.0", "Failed")
        previous = {"image": {"repository": "delivery", "tag": "v1.1.0"}} \
            if previous is None else previous
        check_retry(failed, runtime, outcome, previous, [failed], service)

    def test_a_failed_release_with_its_input_and_service_may_run_again(self) -> None:
        self.retry()
        self.retry(runtime="Failed", outcome=None)

    def test_the_retry_rules_come_first(self) -> None:
        with refused(CONFLICT, "delivery-1 is running (Durable status Running); it can be "
                               "retried once it has ended Failed"):
            self.retry(runtime="Running", outcome=None, previous={}, service=None)

    def test_a_purged_input_refuses(self) -> None:
        for previous in ({}, {"image": "delivery:v1.1.0"}, "text"):
            with refused(CONFLICT, "delivery-1 has no orchestration input any more (its "
                                   "history was purged), so who pushed its image is unknown; "
                                   "it is not run again"):
                self.retry(previous=previous, service=None)

    def test_a_service_gone_from_the_policy_refuses(self) -> None:
        with refused(CONFLICT, "the release policy has no service delivery any more"):
            self.retry(service=None)

    def test_an_image_the_policy_no_longer_takes_refuses(self) -> None:
        with pytest.raises(Refusal, match="^the policy no longer releases v0.9.0: "):
            self.retry(previous={"image": {"repository": "delivery", "tag": "v0.9.0"}},
                       release=row("delivery-1", "v0.9.0", "Failed"))
        with pytest.raises(Refusal, match="takes delivery from repository delivery, not old"):
            self.retry(previous={"image": {"repository": "old", "tag": "v1.1.0"}})

    def test_how_the_run_before_ended(self) -> None:
        failed = row("delivery-1", "v1.1.0", "Failed")
        output = {"outcome": "Failed", "environment": "qa", "reason": "no key", "x": 1}
        assert how_it_ended(failed, "Completed", output) == output
        assert how_it_ended(failed, "Failed", None) == \
            {"outcome": "Failed", "environment": "prod", "reason": "why"}
        assert how_it_ended(failed, "Terminated", {"outcome": None}) == \
            {"outcome": "Terminated", "environment": "prod", "reason": "why"}
