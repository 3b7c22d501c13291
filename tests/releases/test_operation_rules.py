"""The pure rules behind the releases API: previous good, operation ids, request parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.ledger.records import ReleaseRecord, StageState
from shared.policy import parse_policy
from shared.releases.operations import (
    Deployed,
    Operation,
    next_operation_number,
    operation_id,
    operation_kind,
    operation_number,
    previous_good,
    was_deployed,
)
from shared.releases.plan import Stage
from tests.policy.policy_samples import BASE
from triggers.http import Refused, operator, request_body
from triggers.releases import list_filters

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
# An environment as a policy snapshot writes it (a stage is read from a whole one).
PROD = parse_policy(BASE).service("delivery").snapshot()["environments"][1]


def row(release_id: str, day: int, **stages: tuple[str, int | None]) -> ReleaseRecord:
    """A release created on `day`, with stage states finished on the given days."""
    return ReleaseRecord(
        release_id=release_id, service="delivery", version=f"v{day}.0.0",
        digest="sha256:" + f"{day:x}" * 64, state="Completed",
        created_at=T0 + timedelta(days=day), updated_at=T0 + timedelta(days=day),
        stages={env: StageState(state, started=T0, finished=None if finished is None
                                else T0 + timedelta(days=finished))
                for env, (state, finished) in stages.items()})


class TestPreviousGood:
    def test_the_newest_other_release_healthy_in_that_environment(self) -> None:
        v1 = row("d-1", 1, qa=("Healthy", 1), prod=("Healthy", 2))
        v2 = row("d-2", 3, qa=("Healthy", 3), prod=("Healthy", 4))
        v3 = row("d-3", 5, qa=("Healthy", 5), prod=("Healthy", 6))
        assert previous_good([v3, v2, v1], "prod", v3) == v2
        assert previous_good([v3, v2, v1], "prod", v2) == v1
        assert previous_good([v3, v2, v1], "prod", v1) is None

    def test_rolled_back_failed_unfinished_or_absent_stages_do_not_count(self) -> None:
        v1 = row("d-1", 1, prod=("Healthy", 1))
        v2 = row("d-2", 2, prod=("RolledBack", 2))
        v3 = row("d-3", 3, prod=("Deploying", None))
        v4 = row("d-4", 4, qa=("Healthy", 4), prod=("Rejected", 4))
        v5 = row("d-5", 5, prod=("Healthy", 5))
        assert previous_good([v5, v4, v3, v2, v1], "prod", v5) == v1

    def test_operations_rows_are_not_releases(self) -> None:
        v1 = row("d-1", 1, prod=("Healthy", 1))
        op = row("rollback:delivery:prod:1", 3, prod=("Healthy", 3))
        v2 = row("d-2", 2, prod=("Healthy", 4))
        assert previous_good([op, v2, v1], "prod", v2) == v1

    def test_an_operation_putting_a_release_back_makes_it_the_newest_good(self) -> None:
        # v1 was redeployed after v2 (its stage became Healthy again on day 5)
        v1 = row("d-1", 1, prod=("Healthy", 5))
        v2 = row("d-2", 2, prod=("Healthy", 2))
        assert previous_good([v2, v1], "prod", v1) == v2

    def test_nothing_that_became_good_after_the_current_one(self) -> None:
        # v2 was restored into QA after v3 failed later on (environmentAndEarlier): v3's
        # QA stage stays Healthy, but it is not "before" v2
        v1 = row("d-1", 1, qa=("Healthy", 1))
        v2 = row("d-2", 2, qa=("Healthy", 2))
        v3 = row("d-3", 3, qa=("Healthy", 3), prod=("RolledBack", 3))
        assert previous_good([v3, v2, v1], "qa", v2) == v1

    def test_a_current_release_without_a_good_stage_takes_the_newest_good(self) -> None:
        v1 = row("d-1", 1, prod=("Healthy", 1))
        v2 = row("d-2", 2, prod=("Healthy", 2))
        v3 = row("d-3", 3)
        assert previous_good([v3, v2, v1], "prod", v3) == v2


def test_was_deployed() -> None:
    assert was_deployed(row("d", 1, prod=("Healthy", 1)), "prod")
    assert was_deployed(row("d", 1, prod=("RolledBack", 1)), "prod")
    for state in ("WaitingForApproval", "Rejected", "Expired", "Superseded", "Failed",
                  "Deploying"):
        assert not was_deployed(row("d", 1, prod=(state, 1)), "prod"), state
    assert not was_deployed(row("d", 1), "prod")


class TestOperationIds:
    def test_ids_kinds_and_numbers(self) -> None:
        assert operation_id("rollback", "delivery", "prod", 3) == "rollback:delivery:prod:3"
        assert operation_kind("rollback:delivery:prod:3") == "rollback"
        assert operation_kind("redeploy:delivery:qa:1") == "redeploy"
        assert operation_kind("delivery-0123456789abcdef") == "release"
        assert operation_kind("redeploy:delivery:qa:1:deploy") == "release"
        assert operation_number("redeploy:delivery:qa:12", "delivery", "qa") == 12
        assert operation_number("redeploy:delivery:qa:1:deploy", "delivery", "qa") is None
        assert operation_number("rollback:delivery:qa-eu:1", "delivery", "qa") is None

    def test_kinds_share_one_sequence_per_environment(self) -> None:
        ids = ["rollback:delivery:prod:1", "redeploy:delivery:prod:4",
               "redeploy:delivery:prod:4:deploy", "rollback:delivery:qa:9",
               "delivery-0123456789abcdef"]
        assert next_operation_number(ids, "delivery", "prod") == 5
        assert next_operation_number(ids, "delivery", "qa") == 10
        assert next_operation_number(ids, "delivery", "eu") == 1


def test_the_operation_input_round_trips_and_names_who_and_why() -> None:
    stage = Stage.from_dict(PROD)
    op = Operation("rollback:delivery:prod:2", "rollback", "delivery", stage,
                   "ann@example.com", "errors up",
                   Deployed("d-1", "v1.0.0", "sha256:" + "1" * 64, "r/prod/d@sha256:1"),
                   Deployed("d-2", "v2.0.0", "sha256:" + "2" * 64, "r/prod/d@sha256:2"),
                   {"from": "snapshot"})
    assert Operation.from_input(op.to_input()) == op
    assert op.change_cause() == ("rollback by ann@example.com from v2.0.0 to v1.0.0 "
                                 "(rollback:delivery:prod:2): errors up")
    assert op.describe() == ("rollback of prod to v1.0.0 (d-1) from v2.0.0 (d-2) by "
                             "ann@example.com: errors up")
    assert "stage" not in op.summary()  # the custom status carries no secrets spec


class TestRequests:
    def test_list_filters(self) -> None:
        assert list_filters({}) == (None, [], 100)
        assert list_filters({"service": "delivery", "state": "completed, RolledBack",
                             "limit": "5"}) == ("delivery", ["Completed", "RolledBack"], 5)
        assert list_filters({"service": " ", "state": ""}) == (None, [], 100)

    @pytest.mark.parametrize("params, words", [
        ({"state": "Done"}, "unknown state 'Done'"),
        ({"limit": "-1"}, "limit must be a whole number from 1 to 1000"),
        ({"limit": "1e3"}, "limit must be"),
        ({"sort": "x"}, "unknown query parameter 'sort'"),
        ({"service": "a b"}, "is not a service name"),
    ])
    def test_bad_filters(self, params: dict[str, str], words: str) -> None:
        with pytest.raises(Refused) as refused:
            list_filters(params)
        assert refused.value.status == 400 and words in refused.value.reason

    def test_body(self) -> None:
        assert request_body(b'{"environment": "qa", "reason": " a\\n b "}',
                            ("environment", "reason")) == {"environment": "qa",
                                                           "reason": "a b"}
        assert request_body(b'{"environment": "qa"}', ("environment",),
                            ("reason",)) == {"environment": "qa"}
        with pytest.raises(Refused) as refused:
            request_body(b"{}" + b" " * 70_000, ("environment",))
        assert refused.value.status == 413
        with pytest.raises(Refused, match="reason is longer than 500"):
            request_body(b'{"environment": "qa", "reason": "%s"}' % (b"x" * 501),
                         ("environment", "reason"))
        with pytest.raises(Refused, match="body must be a JSON object"):
            request_body(b"", ("environment",))

    def test_operator(self) -> None:
        signed_in = {"WEBSITE_AUTH_ENABLED": "true"}
        ann = {"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"}
        assert operator(ann, signed_in) == "ann@example.com"
        assert operator({"x-ms-client-principal-name": " ann\n@example.com "}, signed_in) \
            == "ann @example.com"
        assert operator({"X-MS-CLIENT-PRINCIPAL-NAME": "  "}, signed_in) == "anonymous"
        assert operator({}, signed_in) == "anonymous"

    @pytest.mark.parametrize("auth", [{}, {"WEBSITE_AUTH_ENABLED": "false"},
                                      {"WEBSITE_AUTH_ENABLED": ""}])
    def test_no_operator_from_headers_anyone_can_send(self, auth: dict[str, str]) -> None:
        headers = {"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com",
                   "X-MS-CLIENT-PRINCIPAL-ID": "11111111-2222-3333-4444-555555555555"}
        assert operator(headers, auth) == "anonymous"


@pytest.mark.parametrize("rollback, on_failure", [
    (None, "environment"), ({}, "environment"), ({"onFailure": "none"}, "none"),
    ({"onFailure": "environmentAndEarlier"}, "environmentAndEarlier"),
    ({"pauseHours": 4}, "environment"),
])
def test_what_a_failed_deployment_does(rollback: dict | None, on_failure: str) -> None:
    without = {name: value for name, value in PROD.items() if name != "rollback"}
    spec = without if rollback is None else {**without, "rollback": rollback}
    assert Stage.from_dict(spec).on_failure == on_failure
