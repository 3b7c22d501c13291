"""Reading a snapshot back: one `from_dict` gives the typed environment, gate and rollback.

`recorded/release_inputs.json` are release inputs as ingestion wrote them before the reader
existed (a rich policy and the base one); `recorded/plan_requests.json` is what the plan,
`GateRules.from_spec` and `PauseRules.of` of that code derived from them. Releases in flight
carry such inputs, so today's reader must give the same requests and rules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from policy_samples import BASE
from test_policy_snapshot import RICH

from shared.policy import Environment, Gate, Rollback, parse_policy
from shared.releases.pause import PauseRules
from shared.releases.plan import ReleasePlan, cluster_request

RECORDED = Path(__file__).parent / "recorded"
INPUTS: dict[str, Any] = json.loads((RECORDED / "release_inputs.json").read_text())
REQUESTS: dict[str, Any] = json.loads((RECORDED / "plan_requests.json").read_text())
AT = datetime(2026, 11, 22, 4, 10, tzinfo=UTC)  # the time the requests were recorded with


def derived(plan: ReleasePlan) -> dict[str, Any]:
    """What the plan derives from its input, in the recorded file's shape."""
    stages = {}
    for stage in plan.stages:
        out: dict[str, Any] = {
            "imageIn": plan.image_in(stage), "deployRequest": plan.deploy_request(stage),
            "clusterRequest": cluster_request(stage, image="x", snapshot={"a": 1}),
            "onFailure": stage.on_failure,
            "rolloutTimeoutSeconds": stage.rollout_timeout.total_seconds()}
        pause = PauseRules.of(stage.rollback)
        out["pause"] = None if pause is None else {
            "deadlineSeconds": pause.deadline.total_seconds(), "onDeadline": pause.on_deadline}
        if stage.promotion:
            out["promotionRequest"] = plan.promotion_request(stage)
        if stage.gate:
            gate = stage.gate
            out["approvalRequest"] = plan.approval_request(stage, AT + timedelta(hours=72),
                                                           "qa: ok")
            out["gateRules"] = {
                "required": gate.required_approvals,
                "deadlineSeconds": gate.deadline.total_seconds(),
                "reminders": gate.reminders_before_deadline,
                "nextWake": [gate.next_wake(AT, n).isoformat() for n in range(5)],
                "escalatedTo": [gate.escalated_to(n) for n in range(1, 5)],
                "webhookSecret": gate.teams_webhook_secret}
        stages[stage.name] = out
    return {"gates": plan.gates, "stages": stages}


@pytest.mark.parametrize("name", ["rich", "base"])
def test_inputs_written_before_the_reader_give_the_requests_and_rules_they_gave(
        name: str) -> None:
    plan = ReleasePlan.from_input(json.loads(json.dumps(INPUTS[name])))
    assert json.loads(json.dumps(derived(plan))) == REQUESTS[name]


@pytest.mark.parametrize("name", ["rich", "base"])
def test_each_environment_reads_back_whole(name: str) -> None:
    for written in INPUTS[name]["policy"]["environments"]:
        assert Environment.from_dict(written).to_dict() == written


@pytest.mark.parametrize("text", [RICH, BASE])
def test_the_model_survives_its_snapshot(text: str) -> None:
    service = parse_policy(text, "policy.yaml").service("delivery")
    for environment in service.environments:
        assert Environment.from_dict(environment.to_dict()) == environment


def test_a_stage_carries_the_typed_policy() -> None:
    plan = ReleasePlan.from_input(json.loads(json.dumps(INPUTS["rich"])))
    qa, staging, prod = plan.stages
    assert qa.gate is None and staging.gate is None and isinstance(prod.gate, Gate)
    assert prod.gate.users == ("alice@example.com", "bob@example.com")
    assert prod.gate.escalation_group is None and prod.gate.required_approvals == 2
    assert qa.rollback == Rollback("environmentAndEarlier", True, timedelta(hours=4))
    assert prod.promotion is not None and prod.promotion.target_repository == "prod/delivery"
    assert staging.rollout_timeout == timedelta(seconds=90)
    assert qa.environment.deploy_target["container"] == "app"


def test_a_snapshot_without_a_rollback_or_timeout_restores_within_ten_minutes() -> None:
    written = dict(INPUTS["base"]["policy"]["environments"][0])
    del written["rollback"], written["rolloutTimeoutSeconds"]
    environment = Environment.from_dict(written)
    assert environment.rollback == Rollback("environment", False, None)
    assert environment.rollout_timeout == timedelta(minutes=10)
    assert PauseRules.of(environment.rollback) is None


@pytest.mark.parametrize(("drop", "field"), [
    (("target",), "environment 'qa'.target is missing"),
    (("image",), "environment 'qa'.image is missing"),
    (("secrets",), "environment 'qa'.secrets is missing"),
])
def test_a_snapshot_missing_a_part_names_it(drop: tuple[str, ...], field: str) -> None:
    written = {k: v for k, v in INPUTS["base"]["policy"]["environments"][0].items()
               if k not in drop}
    with pytest.raises(ValueError, match=f"^policy snapshot: {field}$"):
        Environment.from_dict(written)


def test_a_gate_without_a_deadline_names_it() -> None:
    with pytest.raises(ValueError, match="prod'.gate.deadlineSeconds is missing"):
        Environment.from_dict({**INPUTS["base"]["policy"]["environments"][1],
                               "gate": {"requiredApprovals": 1}})
