"""The delivery figures' rules against a hand-built ledger history with known answers.

Window: the 30 days up to 2026-11-30 00:00 UTC. `delivery` and `web` go to `prod`, `quiet`
has no row at all, `legacy` is no longer in the policy. Every expected figure below is
worked out by hand from the rows, not computed by the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.ledger.records import ReleaseRecord, StageState
from shared.metrics.delivery import (
    check_days,
    delivery_report,
    describe_duration,
    describe_rate,
    needing_push_times,
    percentile,
    production_deployments,
)

UNTIL = datetime(2026, 11, 30, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=30)
PRODUCTION = {"delivery": "prod", "web": "prod", "quiet": "prod"}
HOUR = 3600.0


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def release(rid: str, prod: StageState | None, *, created: datetime, service: str = "delivery",
            state: str = "Completed") -> ReleaseRecord:
    stages = {"qa": StageState("Healthy", created, created + timedelta(minutes=5))}
    if prod is not None:
        stages["prod"] = prod
    return ReleaseRecord(rid, service, "v" + rid, "sha256:" + rid.encode().hex().ljust(64, "0"),
                         state, created, (prod.finished if prod and prod.finished else created),
                         environment="prod" if prod else "qa", stages=stages)


def prod(state: str, finished: datetime, detail: str | None = None) -> StageState:
    return StageState(state, finished - timedelta(minutes=10), finished, detail)


def operation(op_id: str, finished: datetime, state: str = "Completed") -> ReleaseRecord:
    service = op_id.split(":")[1]
    return ReleaseRecord(op_id, service, "v-old", "sha256:" + "e" * 64, state,
                         finished - timedelta(minutes=5), finished, environment="prod",
                         stages={"prod": StageState(state, finished - timedelta(minutes=5),
                                                    finished, "rollback of prod")})


HISTORY = [
    # delivery: pushed 09:00, created 10:00, healthy in production 12:00 -> lead 3 h
    release("d1", prod("Healthy", at(1, 12)), created=at(1, 10)),
    # rolled back automatically at 09:00; production healthy again at 10:30 (d3) -> 1.5 h
    release("d2", prod("RolledBack", at(5, 9), "rollout failed; restored v1"), created=at(5, 8),
            state="RolledBack"),
    # no push time known: measured from its creation -> lead 1 h
    release("d3", prod("Healthy", at(5, 10, 30)), created=at(5, 9, 30)),
    # failed and left in place; a rollback operation restored production 30 min later
    release("d4", prod("Failed", at(10), "analysis failed; kept by ann"), created=at(9),
            state="Failed"),
    operation("rollback:delivery:prod:1", at(10, 0, 30)),
    # refused before the cluster, superseded, still waiting, QA only: no production deployment
    release("d5", prod("Failed", at(11), "nothing deployed in prod: chart 2.0 not released"),
            created=at(11), state="Failed"),
    release("d6", prod("Superseded", at(12), "superseded by vd7"), created=at(12),
            state="Superseded"),
    release("d7", StageState("WaitingForApproval", at(13)), created=at(13),
            state="WaitingForApproval"),
    release("d12", None, created=at(14), state="Running"),
    release("d13", prod("Failed", at(14, 5), "x was still deploying in prod; this release "
                                             "deployed nothing there: redeploy it"),
            created=at(14), state="Failed"),
    # healthy before the window: not counted
    release("d8", prod("Healthy", at(20, month=10)), created=at(19, month=10)),
    # re-marked Healthy by a redeploy: counted (at the operation's time), no lead time
    release("d9", prod("Healthy", at(20, 12), "redeployed by bob (redeploy:delivery:prod:2)"),
            created=at(1, month=10)),
    operation("redeploy:delivery:prod:2", at(20, 12)),
    # rolled back by an operator: a change failure, but its start is not recorded: no restore
    release("d10", prod("RolledBack", at(25), "rolled back by ann (rollback:delivery:prod:3): "
                                              "checkout broken"), created=at(24)),
    # rolled back automatically, nothing healthy since: unrestored
    release("d11", prod("RolledBack", at(28), "rollout failed"), created=at(28),
            state="RolledBack"),
    # web: pushed a day before it became healthy
    release("w1", prod("Healthy", at(15)), created=at(14, 1), service="web"),
    # a service no longer in the policy: not counted
    release("l1", prod("RolledBack", at(15)), created=at(14), service="legacy"),
]
PUSHED = {"d1": at(1, 9), "w1": at(14)}


def report(service: str | None = None, history: list[ReleaseRecord] = HISTORY,
           production: dict[str, str] = PRODUCTION) -> dict:
    return delivery_report(history, production, PUSHED, since=SINCE, until=UNTIL,
                           service=service).to_dict()


def test_each_figure_of_a_service_from_the_hand_built_history() -> None:
    delivery = report()["services"]["delivery"]
    assert delivery == {
        "production": "prod",
        # d1 d2 d3 d4 d9 d10 d11
        "deploymentFrequency": {"deployments": 7, "perDay": round(7 / 30, 4)},
        # d1 3 h, d3 1 h
        "leadTime": {"changes": 2, "medianSeconds": 2 * HOUR, "p90Seconds": 3 * HOUR},
        # d2 d4 d10 d11
        "changeFailureRate": {"deployments": 7, "failed": 4, "rate": round(4 / 7, 4)},
        # d2 1.5 h, d4 30 min; d11 not yet
        "timeToRestore": {"restored": 2, "unrestored": 1, "medianSeconds": 1 * HOUR},
    }


def test_all_services_together_and_a_service_without_failures() -> None:
    figures = report()
    assert figures["days"] == 30 and figures["service"] is None
    assert figures["since"] == "2026-10-31T00:00:00+00:00"
    assert sorted(figures["services"]) == ["delivery", "quiet", "web"]  # not legacy
    web = figures["services"]["web"]
    assert web["leadTime"] == {"changes": 1, "medianSeconds": 24 * HOUR,
                               "p90Seconds": 24 * HOUR}
    assert web["changeFailureRate"] == {"deployments": 1, "failed": 0, "rate": 0.0}
    assert web["timeToRestore"] == {"restored": 0, "unrestored": 0, "medianSeconds": None}
    assert figures["all"] == {
        "deploymentFrequency": {"deployments": 8, "perDay": round(8 / 30, 4)},
        # 1 h, 3 h, 24 h: the median is 3 h, the 90th percentile (3rd of 3) 24 h
        "leadTime": {"changes": 3, "medianSeconds": 3 * HOUR, "p90Seconds": 24 * HOUR},
        "changeFailureRate": {"deployments": 8, "failed": 4, "rate": 0.5},
        "timeToRestore": {"restored": 2, "unrestored": 1, "medianSeconds": 1 * HOUR},
    }


def test_no_production_deployment_is_no_data_not_zero() -> None:
    quiet = report()["services"]["quiet"]
    assert quiet["deploymentFrequency"] == {"deployments": 0, "perDay": 0.0}
    assert quiet["leadTime"] == {"changes": 0, "medianSeconds": None, "p90Seconds": None}
    assert quiet["changeFailureRate"] == {"deployments": 0, "failed": 0, "rate": None}
    assert quiet["timeToRestore"] == {"restored": 0, "unrestored": 0, "medianSeconds": None}
    empty = delivery_report([], PRODUCTION, {}, since=SINCE, until=UNTIL)
    assert empty.all.change_failure_rate is None and empty.all.lead_time_median is None
    assert describe_rate(empty.all.change_failure_rate) == "no data"
    assert describe_duration(empty.all.restore_median) == "no data"


def test_one_service_asked_for_is_its_figures_and_the_all_figures() -> None:
    figures = report("web")
    assert list(figures["services"]) == ["web"] and figures["service"] == "web"
    assert figures["all"]["deploymentFrequency"]["deployments"] == 1
    assert figures["all"]["leadTime"]["changes"] == 1


def test_the_window_edges_count_by_when_the_production_stage_ended() -> None:
    edge = [release("e1", prod("Healthy", SINCE), created=SINCE - timedelta(hours=2)),
            release("e0", prod("Healthy", SINCE - timedelta(seconds=1)),
                    created=SINCE - timedelta(hours=2)),
            release("e2", prod("RolledBack", UNTIL), created=UNTIL - timedelta(hours=1))]
    figures = delivery_report(edge, {"delivery": "prod"}, {}, since=SINCE, until=UNTIL)
    assert [d.release_id for d in production_deployments(edge, {"delivery": "prod"})] == [
        "e0", "e1", "e2"]
    assert (figures.all.deployments, figures.all.failed) == (2, 1)
    assert figures.all.lead_times == (2 * HOUR,)  # from its creation, before the window
    assert figures.all.unrestored == 1


def test_which_deployments_need_their_push_time_looked_up() -> None:
    wanted = needing_push_times(HISTORY, PRODUCTION, SINCE, UNTIL)
    # healthy at their own time in the window: not d9 (an operation's time), not d8 (before)
    assert [d.release_id for d in wanted] == ["d1", "d3", "w1"]


def test_chart_buckets_are_daily_up_to_60_days_then_weekly() -> None:
    daily = delivery_report(HISTORY, PRODUCTION, PUSHED, since=SINCE, until=UNTIL).all
    assert len(daily.buckets) == 30 and {b.days for b in daily.buckets} == {1}
    assert daily.buckets[1].start == at(1) and daily.buckets[1].healthy == 1  # d1
    assert daily.buckets[1].lead_times == (3 * HOUR,)
    day5 = daily.buckets[5]  # 5 November: d2 rolled back, d3 healthy
    assert (day5.healthy, day5.failed, day5.failure_rate, day5.restores) == (
        1, 1, 0.5, (1.5 * HOUR,))
    assert sum(b.deployments for b in daily.buckets) == daily.deployments == 8
    weekly = delivery_report(HISTORY, PRODUCTION, PUSHED, since=UNTIL - timedelta(days=90),
                             until=UNTIL).all
    assert [b.days for b in weekly.buckets] == [7] * 12 + [6]
    assert sum(b.deployments for b in weekly.buckets) == 9  # d8 too, 20 October


def test_chart_buckets_are_calendar_days_utc_whatever_the_window_starts_at() -> None:
    since, until = at(31, 18, month=10), at(30, 18)
    figures = delivery_report(HISTORY, PRODUCTION, PUSHED, since=since, until=until).all
    assert len(figures.buckets) == 31  # 31 October (from 18:00) to 30 November (to 18:00)
    assert (figures.buckets[0].start, figures.buckets[-1].start) == (at(31, month=10), at(30))
    assert figures.buckets[1].start == at(1) and figures.buckets[1].healthy == 1  # d1, 12:00
    assert sum(b.deployments for b in figures.buckets) == figures.deployments == 8


def test_percentile_is_nearest_rank() -> None:
    assert percentile(range(1, 11), 90) == 9
    assert percentile([5.0], 90) == 5.0
    assert percentile([4, 1, 3, 2], 50) == 2
    assert percentile([], 90) is None


@pytest.mark.parametrize("days", [0, 366, -1])
def test_days_outside_1_to_365_are_refused(days: int) -> None:
    with pytest.raises(ValueError, match="days must be a whole number from 1 to 365"):
        check_days(days)
    assert check_days(365) == 365 and check_days(1) == 1


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "no data"), (44.6, "45 s"), (720, "12 min"), (3 * HOUR + 1200, "3 h 20 min"),
    (5 * HOUR, "5 h"), (52 * HOUR, "2 d 4 h"), (72 * HOUR, "3 d")])
def test_durations_read_as_people_say_them(seconds: float | None, text: str) -> None:
    assert describe_duration(seconds) == text


def test_rates_as_percent() -> None:
    assert (describe_rate(0.0), describe_rate(0.5), describe_rate(1 / 3)) == (
        "0 %", "50 %", "33.3 %")
