"""A service's pipeline page, without I/O: its environments left to right, what runs,
what waits and for whom, a paused failure and the last failure with its reason."""

from __future__ import annotations

import json
from datetime import timedelta

from sandbox.policy_text import SERVICE, qa_then_prod
from shared.dashboard.pipeline import build_pipeline
from shared.dashboard.render import render_pipeline
from shared.ledger import Deployment, EnvironmentState, StageState
from shared.policy.loader import parse_policy
from tests.dashboard.test_dashboard_view import (
    D1,
    D3,
    NOW,
    PROD,
    QA,
    SECRET,
    V1,
    V2,
    V3,
    WAITING_STATUS,
    Text,
    release,
)

POLICY = qa_then_prod("https://127.0.0.1:5000", "/ca.pem", "delivery",
                      gate="{approvers: {users: [ann@example.com, bob@example.com],"
                           " groups: [release-managers]}, requiredApprovals: 2,"
                           " deadline: 72h}",
                      qa_extra="        strategy: {canary: {replicas: 4, weights: [25, 50]}}\n")
ENVIRONMENTS = parse_policy(POLICY, "policy.yaml").service(SERVICE).environments
FAILED_QA = release("delivery-dddddddddddddddd", "v0.9.0", D3, "RolledBack", 400, 5,
                    stages={"qa": StageState("RolledBack", NOW - timedelta(minutes=399),
                                             NOW - timedelta(minutes=396),
                                             "analysis failed: error rate 0.5")})
ROLLED_BACK_PROD = release(V2.release_id, V2.version, V2.digest, "RolledBack", 60, 3,
                           environment="prod", reason=V2.reason,
                           stages={"qa": StageState("Healthy"), "prod": StageState(
                               "RolledBack", NOW - timedelta(minutes=58),
                               NOW - timedelta(minutes=57),
                               "rollout failed: CrashLoopBackOff; restored v1.0.0")})
PAUSED = release("delivery-eeeeeeeeeeeeeeee", "v1.0.3", D1, "Running", 5,
                 environment="qa", step="paused", reason="analysis failed")
PAUSED_STATUS = {"waitingFor": {"kind": "failure", "environment": "qa",
                                "event": "failure:qa:1", "deadline":
                                (NOW + timedelta(hours=2)).isoformat(),
                                "failure": "analysis failed: error rate 0.5",
                                "onDeadline": "rollback"}}


def pipeline() -> dict:
    view = build_pipeline(
        SERVICE, now=NOW, environments=ENVIRONMENTS, states=[QA, PROD],
        releases=[PAUSED, V3, ROLLED_BACK_PROD, V1, FAILED_QA],
        statuses={V3.release_id: WAITING_STATUS, PAUSED.release_id: PAUSED_STATUS},
        known={r.release_id: r for r in (V1, V2, V3)})
    return view.to_dict()


def test_each_environment_in_order_with_what_runs_waits_and_last_failed() -> None:
    shown = pipeline()
    qa, prod = shown["stages"]
    assert (qa["environment"], prod["environment"]) == ("qa", "prod")
    assert (qa["strategy"], prod["strategy"]) == ("canary", "rolling")
    assert qa["gate"] is None
    assert prod["gate"] == {"approvers": ["ann@example.com", "bob@example.com",
                                          "group release-managers"],
                            "requiredApprovals": 2, "deadlineText": "72 h to decide"}
    assert prod["current"]["version"] == "v1.0.0" and prod["good"] is True
    assert qa["current"]["version"] == "v1.0.2" and qa["good"] is False
    assert [w["version"] for w in prod["waiting"]] == ["v1.0.2"]
    assert prod["waiting"][0]["links"]  # where to decide
    assert qa["waiting"] == [] and qa["moving"] == []
    assert [(p["version"], p["failure"]) for p in qa["paused"]] == [
        ("v1.0.3", "analysis failed: error rate 0.5")]
    assert prod["lastFailure"]["version"] == "v1.0.1"
    assert prod["lastFailure"]["reason"] == "rollout failed: CrashLoopBackOff; restored v1.0.0"
    assert prod["lastFailure"]["atText"] == "57 min ago"
    assert qa["lastFailure"]["state"] == "RolledBack"
    assert qa["lastFailure"]["reason"] == "analysis failed: error rate 0.5"
    assert SECRET not in json.dumps(shown)


def test_a_release_deploying_now_and_an_environment_only_the_ledger_knows() -> None:
    moving = release("delivery-ffffffffffffffff", "v1.1.0", D1, "Running", 2,
                     environment="prod", step="rollout")
    stray = EnvironmentState(SERVICE, "staging", current=Deployment(
        V1.release_id, D1, "r/delivery@" + D1, NOW - timedelta(days=3)))
    view = build_pipeline(SERVICE, now=NOW, environments=ENVIRONMENTS,
                          states=[QA, PROD, stray], releases=[moving], statuses={},
                          known={V1.release_id: V1, V3.release_id: V3})
    stages = {stage.environment: stage for stage in view.stages}
    assert list(stages) == ["qa", "prod", "staging"]
    assert [(m.version, m.step) for m in stages["prod"].moving] == [("v1.1.0", "rollout")]
    assert stages["staging"].in_policy is False and stages["staging"].strategy == ""
    assert stages["prod"].last_failure is None


def test_the_page_shows_the_environments_left_to_right_without_script() -> None:
    view = build_pipeline(
        SERVICE, now=NOW, environments=ENVIRONMENTS, states=[QA, PROD],
        releases=[PAUSED, V3, ROLLED_BACK_PROD, V1],
        statuses={V3.release_id: WAITING_STATUS, PAUSED.release_id: PAUSED_STATUS},
        known={r.release_id: r for r in (V1, V2, V3)}, refresh=0)
    html = render_pipeline(view)
    page = Text(html)
    assert page.scripts == 0 and page.refresh is None
    assert html.index('id="stage-qa"') < html.index('id="stage-prod"')
    assert "2 approvals from ann@example.com, bob@example.com, group release-managers" in \
        page.text
    assert "v1.0.3 failed and waits for a person: analysis failed: error rate 0.5" in page.text
    assert "rollout failed: CrashLoopBackOff; restored v1.0.0" in page.text
    assert SECRET not in html
