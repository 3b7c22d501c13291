"""Every branch of the release orchestration, on the real app in devhost with a virtual clock.

Each test starts a release the way ingestion does (`release_input` of a parsed policy) and
drives it with events and clock moves: approval, rejection, expiry with reminders (also after
a late one), superseding, a crashing QA rollout, a failed production verification, failed
promotions, transient failures, a duplicated approval, devhost killed during the production
rollout, rolling back earlier environments, no rollback, a rollback that fails, a deploy that
keeps failing and a missing cluster secret. Clusters are the Kubernetes API simulator, images
live in the session's registry, the ledger in Azurite. Every status read is scanned for the
secret values the stack was given (one check server even echoes its token), and at the end of
each test so are every instance's history and the ledger's rows.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from release_rig import (
    APPROVER,
    OLD_IMAGE,
    SERVICE,
    Released,
    ReleaseStack,
    decision,
    devhost_process,
    fake_digest,
    outcome,
    waiting_at_gate,
)

from devhost.durable.engine import InstanceGone
from sandbox.faults import FaultProxy

MGMT = "/runtime/webhooks/durabletask"


def test_approved_release_goes_to_production(stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        status = await run.at_gate(release)
        assert status["customStatus"]["environment"] == "prod"
        assert status["customStatus"]["waitingFor"]["event"] == "approval:prod:1"
        assert stack.image("qa") == stack.image_in("qa", digest)
        assert stack.image("prod") == OLD_IMAGE
        assert stack.ledger.get_release(release, service=SERVICE).state == "WaitingForApproval"

        run.approve(release, comment="ship it")
        done = await run.finished(release)
        assert done["runtimeStatus"] == "Completed", done
        assert done["output"] == {"releaseId": release, "outcome": "Completed",
                                  "environment": None, "reason": None}
        assert stack.image("prod") == stack.image_in("prod", digest)
        row = stack.ledger.get_release(release, service=SERVICE)
        assert row.state == "Completed"
        assert row.stages["prod"].state == "Healthy"
        assert stack.ledger.environment_state(SERVICE, "prod").last_good.digest == digest
        history = done["customStatus"]["history"]
        assert [h["step"] for h in history] == [
            "deploy", "approval", "approved", "promote", "deploy", "Completed"]
        assert history[2]["detail"] == f"approved by {APPROVER}: ship it"

    stack.serve(scenario)


def test_rejected_release_stops_at_the_gate(stack: ReleaseStack) -> None:
    digest = fake_digest("rejected")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        run.approve(release, approved=False, comment="not this week")
        done = await run.finished(release)
        assert done["runtimeStatus"] == "Completed"
        assert done["output"] == {"releaseId": release, "outcome": "Rejected",
                                  "environment": "prod",
                                  "reason": f"rejected by {APPROVER}: not this week"}
        assert done["customStatus"]["outcome"] == "Rejected"
        assert done["customStatus"]["waitingFor"] is None
        assert stack.image("qa") == stack.image_in("qa", digest)
        assert stack.image("prod") == OLD_IMAGE and stack.writes("prod") == 0
        row = stack.ledger.get_release(release, service=SERVICE)
        assert (row.state, row.stages["prod"].state) == ("Rejected", "Rejected")

    stack.serve(scenario)


def test_gate_expires_after_72_hours_with_reminders_at_24_and_48(stack: ReleaseStack) -> None:
    digest = fake_digest("expired")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        status = await run.at_gate(release, step=0)
        deadline = datetime.fromisoformat(status["customStatus"]["waitingFor"]["deadline"])
        opened = deadline - timedelta(hours=72)

        def reminders(count: int) -> Any:
            return lambda s: (s["customStatus"]["waitingFor"] or {}).get("reminders") == count

        await run.advance_to(opened + timedelta(hours=23, minutes=59))
        assert run.status(release)["customStatus"]["waitingFor"]["reminders"] == 0
        await run.advance_to(opened + timedelta(hours=24))
        await run.until(release, reminders(1), step=0)
        await run.advance_to(opened + timedelta(hours=48))
        status = await run.until(release, reminders(2), step=0)
        assert status["runtimeStatus"] == "Running" and waiting_at_gate(status)
        await run.advance_to(deadline - timedelta(seconds=1))
        status = run.status(release)
        assert status["runtimeStatus"] == "Running"
        assert status["customStatus"]["waitingFor"]["reminders"] == 2

        await run.advance_to(deadline)
        done = await run.finished(release, step=0)
        assert outcome(done) == "Expired", done
        assert done["output"]["reason"] == f"no decision by {deadline.isoformat()}"
        assert stack.image("prod") == OLD_IMAGE and stack.writes("prod") == 0
        row = stack.ledger.get_release(release, service=SERVICE)
        assert (row.state, row.stages["prod"].state) == ("Expired", "Expired")
        # An approval after the end changes nothing: the instance is gone for events.
        with pytest.raises(InstanceGone):
            run.approve(release)

    stack.serve(scenario)


def test_a_late_reminder_does_not_push_the_next_one_back(stack: ReleaseStack) -> None:
    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", fake_digest("late"))
        status = await run.at_gate(release, step=0)
        deadline = datetime.fromisoformat(status["customStatus"]["waitingFor"]["deadline"])
        opened = deadline - timedelta(hours=72)
        # The host was down from hour 23 to 47: the first reminder goes out late ...
        await run.advance_to(opened + timedelta(hours=47))
        await run.until(release, lambda s: s["customStatus"]["waitingFor"].get("reminders") == 1,
                        step=0)
        # ... and the second still at hour 48, so approvers hear twice before the deadline.
        await run.advance_to(opened + timedelta(hours=48))
        await run.until(release, lambda s: s["customStatus"]["waitingFor"].get("reminders") == 2,
                        step=0, seconds=2)
        run.approve(release, approved=False)
        assert outcome(await run.finished(release)) == "Rejected"

    stack.serve(scenario)


def test_superseded_while_waiting_and_while_still_in_qa(stack: ReleaseStack) -> None:
    async def scenario(run: Released) -> None:
        waiting = run.start("v1.0.0", fake_digest("waiting"))
        await run.at_gate(waiting)
        run.raise_event(waiting, "superseded", {"by": "delivery-newer", "version": "v1.2.0"})
        done = await run.finished(waiting)
        assert done["output"] == {"releaseId": waiting, "outcome": "Superseded",
                                  "environment": "prod", "reason": "superseded by v1.2.0"}
        assert stack.ledger.get_release(waiting, service=SERVICE).state == "Superseded"

        # Told while QA still deploys: the event waits for the gate, where the release ends.
        early = run.start("v1.1.0", fake_digest("early"))
        run.raise_event(early, "superseded", {"by": "delivery-newer", "version": "v1.2.0"})
        done = await run.finished(early)
        assert outcome(done) == "Superseded"
        assert stack.image("qa") == stack.image_in("qa", fake_digest("early"))
        assert stack.image("prod") == OLD_IMAGE and stack.writes("prod") == 0

    stack.serve(scenario)


def test_crashing_image_in_qa_is_rolled_back_to_the_previous_image(
        stack: ReleaseStack) -> None:
    digest = fake_digest("crash")
    stack.kube.set_image_behaviour(digest, "crash")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        done = await run.finished(release)
        assert outcome(done) == "RolledBack", done
        assert done["output"]["environment"] == "qa"
        assert "CrashLoopBackOff" in done["output"]["reason"]
        qa = stack.kube.get("deployments", "qa", "delivery")
        assert stack.image("qa") == OLD_IMAGE
        assert "release-workflow.io/release-id" not in qa["metadata"]["annotations"]
        assert stack.writes("qa") == 2  # the deploy and the rollback
        assert stack.image("prod") == OLD_IMAGE and stack.writes("prod") == 0
        assert "approval" not in [h["step"] for h in done["customStatus"]["history"]]
        row = stack.ledger.get_release(release, service=SERVICE)
        assert (row.state, row.stages["qa"].state) == ("RolledBack", "RolledBack")
        assert stack.ledger.environment_state(SERVICE, "qa").current is None

    stack.serve(scenario)


def test_failed_production_verification_restores_the_previous_digest(
        stack: ReleaseStack) -> None:
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")

    def health(headers: dict[str, str]) -> tuple[int, Any]:
        token = headers.get("Authorization")
        if token != stack.probe_token:
            return 401, {"status": "unauthorized"}
        if bad in stack.image("prod"):  # v2 answers, but not well, and quotes the token
            return 200, {"status": f"degraded: token {token} has no access to the database"}
        return 200, {"status": "ok"}

    checks = stack.check_server(health)
    stack.policy(checks=[checks.url])

    async def scenario(run: Released) -> None:
        first = run.start("v1.0.0", good)
        await run.at_gate(first)
        run.approve(first)
        assert outcome(await run.finished(first)) == "Completed"
        assert stack.image("prod") == stack.image_in("prod", good)

        second = run.start("v2.0.0", bad)
        await run.at_gate(second)
        calls = checks.calls
        run.approve(second)
        done = await run.finished(second)
        assert outcome(done) == "RolledBack", done
        assert done["output"]["environment"] == "prod"
        assert done["output"]["reason"].startswith("verification failed: health: JSON field")
        assert "degraded: token *** has no access" in done["output"]["reason"]  # redacted
        assert checks.calls > calls
        assert stack.image("prod") == stack.image_in("prod", good)
        prod = stack.kube.get("deployments", "prod", "delivery")
        assert prod["metadata"]["annotations"]["release-workflow.io/digest"] == good
        assert stack.ledger.environment_state(SERVICE, "prod").last_good.digest == good
        assert stack.ledger.environment_state(SERVICE, "prod").current.digest == good
        row = stack.ledger.get_release(second, service=SERVICE)
        assert (row.state, row.stages["prod"].state) == ("RolledBack", "RolledBack")
        # The approvers hear how it ended, without the probe's token.
        told = stack.teams.cards()[-1]["body"][1]["text"]
        assert told.startswith("Rolled back: verification failed: health"), told
        assert stack.probe_token not in json.dumps(stack.teams.messages())

    stack.serve(scenario)


def test_promotion_of_a_digest_missing_from_the_registry_fails_and_leaves_prod(
        stack: ReleaseStack) -> None:
    digest = fake_digest("never-pushed")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        run.approve(release)
        done = await run.finished(release)
        assert outcome(done) == "Failed", done
        assert done["output"]["environment"] == "prod"
        assert "promote_image" in done["output"]["reason"]
        assert digest in done["output"]["reason"]
        assert len(run.failed_tasks(release)) == 1  # a missing image is not retried
        # The activity marked it permanent (ImageNotFound); the reason shows no marker.
        assert "failed: ImageNotFound: [permanent] registry " in run.failed_tasks(release)[0]
        assert "[permanent]" not in done["output"]["reason"]
        assert stack.image("prod") == OLD_IMAGE and stack.writes("prod") == 0
        row = stack.ledger.get_release(release, service=SERVICE)
        assert (row.state, row.stages["prod"].state) == ("Failed", "Failed")
        assert row.reason == done["output"]["reason"]

    stack.serve(scenario)


def test_promotion_onto_a_conflicting_prod_tag_fails_and_leaves_prod(
        stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")
    squatter = stack.push_to(f"prod/{stack.repository}", "v1.0.0", seed="squatter")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        run.approve(release)
        done = await run.finished(release)
        assert outcome(done) == "Failed", done
        reason = done["output"]["reason"]
        assert f"prod/{stack.repository}:v1.0.0: already points to {squatter}" in reason
        assert "refusing to overwrite" in reason
        assert stack.image("prod") == OLD_IMAGE and stack.writes("prod") == 0
        assert stack.ledger.get_release(release, service=SERVICE).state == "Failed"

    stack.serve(scenario)


def test_transient_cluster_conflicts_are_retried_and_the_release_completes(
        stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")
    stack.kube.inject_conflicts(5)  # the adapter's own 5 attempts at QA's deploy all fail

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        failures = run.failed_tasks(release)
        assert len(failures) == 0  # the sub-orchestration retried, not the release
        qa_failures = run.failed_tasks(f"{release}:qa")
        assert len(qa_failures) == 1 and "kept changing under us" in qa_failures[0]
        assert "failed: ClusterError: [transient] cluster " in qa_failures[0]  # worth a retry
        assert stack.image("qa") == stack.image_in("qa", digest)
        run.approve(release)
        assert outcome(await run.finished(release)) == "Completed"
        assert stack.image("prod") == stack.image_in("prod", digest)

    stack.serve(scenario)


def test_registry_hiccups_during_promotion_are_absorbed(stack: ReleaseStack,
                                                      fault_proxy: FaultProxy) -> None:
    stack.policy(checks=[], registry_endpoint=fault_proxy.endpoint)
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        fault_proxy.inject(503, times=2, method="PUT", path_contains="/manifests/")
        run.approve(release)
        assert outcome(await run.finished(release)) == "Completed"
        assert fault_proxy.stats().injected == 2
        assert stack.image("prod") == stack.image_in("prod", digest)

    stack.serve(scenario)


def test_an_approval_delivered_twice_counts_once(stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        run.approve(release)
        run.approve(release)
        done = await run.finished(release)
        assert outcome(done) == "Completed", done
        steps = [h["step"] for h in done["customStatus"]["history"]]
        assert steps == ["deploy", "approval", "approved", "promote", "deploy", "Completed"]
        assert stack.writes("prod") == 1
        history = run.history(release)
        assert [e["EventType"] for e in history].count("ExecutionCompleted") == 1
        assert [e.get("Name") for e in history
                if e["EventType"] == "SubOrchestrationCreated"] == \
            ["deploy_environment", "deploy_environment"]
        with pytest.raises(InstanceGone):
            run.approve(release)
        assert stack.ledger.get_release(release, service=SERVICE).state == "Completed"

    stack.serve(scenario)


def test_devhost_killed_during_the_production_rollout_finishes_after_restart(
        stack: ReleaseStack, tmp_path: Path) -> None:
    digest = stack.push("v1.0.0")
    release, payload = stack.release_request("v1.0.0", digest, datetime.now(UTC))
    host = devhost_process(tmp_path / "hub", tmp_path / "devhost.log", stack.settings)
    host.start()
    try:
        code, _ = host.request("POST", f"{MGMT}/orchestrators/release/{release}",
                               json.loads(payload))
        assert code == 202
        host.until(release, waiting_at_gate)
        stack.kube.rollout_seconds = 30  # the simulator's clock is frozen: prod never finishes
        code, _ = host.request("POST",
                               f"{MGMT}/instances/{release}/raiseEvent/approval:prod:1",
                               decision(APPROVER))
        assert code == 202
        deadline = time.monotonic() + 20
        while stack.image("prod") != stack.image_in("prod", digest):
            assert time.monotonic() < deadline, "prod was never deployed"
            time.sleep(0.05)
        time.sleep(0.5)  # the rollout watch is polling now
        assert host.status(release)["customStatus"]["step"] == "deploy"
        host.kill()

        host.start()
        status = host.status(release)
        assert status["runtimeStatus"] == "Running"
        assert status["customStatus"]["environment"] == "prod"
        stack.kube.advance(31)  # the rollout completes while devhost is back
        done = host.until(release, lambda s: s["runtimeStatus"] not in ("Pending", "Running"))
        assert outcome(done) == "Completed", done
        assert stack.image("prod") == stack.image_in("prod", digest)
        assert stack.writes("prod") == 1  # a deploy repeated after the restart writes nothing
        history = host.request("GET", f"{MGMT}/instances/{release}?showHistory=true")[1]
        assert [e["EventType"] for e in history["historyEvents"]].count(
            "ExecutionCompleted") == 1
        assert stack.ledger.get_release(release, service=SERVICE).state == "Completed"
        assert stack.ledger.environment_state(SERVICE, "prod").last_good.digest == digest
        stack.assert_no_secret("the final status", done)
        stack.assert_no_secret("the ledger", stack.ledger_rows())
    finally:
        host.stop()


def test_production_failure_rolls_back_earlier_environments_when_the_policy_says_so(
        stack: ReleaseStack) -> None:
    stack.policy(checks=[], prod_extra="        rollback: {onFailure: environmentAndEarlier}\n")
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")
    stack.kube.set_image_behaviour(f"prod/{stack.repository}@{bad}", "crash")  # prod only

    async def scenario(run: Released) -> None:
        first = await run.completed("v1.0.0", good)
        second = run.start("v2.0.0", bad)
        await run.at_gate(second)
        assert stack.image("qa") == stack.image_in("qa", bad)
        run.approve(second)
        done = await run.finished(second)
        assert outcome(done) == "RolledBack", done
        assert done["output"]["environment"] == "prod"
        assert "CrashLoopBackOff" in done["output"]["reason"]
        assert stack.image("prod") == stack.image_in("prod", good)
        assert stack.image("qa") == stack.image_in("qa", good)
        qa = stack.kube.get("deployments", "qa", "delivery")["metadata"]["annotations"]
        assert qa["release-workflow.io/release-id"] == first
        assert "failed later" in qa["kubernetes.io/change-cause"]
        for environment in ("qa", "prod"):  # the ledger says what runs again
            current = stack.ledger.environment_state(SERVICE, environment).current
            assert (current.release_id, current.digest) == (first, good), environment
        assert stack.ledger.environment_state(SERVICE, "prod").last_good.digest == good

    stack.serve(scenario)


def test_without_rollback_a_failed_environment_is_left_as_it_is(stack: ReleaseStack) -> None:
    stack.policy(checks=[], qa_extra="        rollback: {onFailure: none}\n")
    digest = fake_digest("left-alone")
    stack.kube.set_image_behaviour(digest, "crash")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        done = await run.finished(release)
        assert outcome(done) == "Failed", done
        assert done["output"]["environment"] == "qa"
        assert "CrashLoopBackOff" in done["output"]["reason"]
        assert stack.image("qa") == stack.image_in("qa", digest)
        assert stack.writes("qa") == 1
        state = stack.ledger.environment_state(SERVICE, "qa")  # what runs there, not good
        assert state.current.release_id == release and state.last_good is None

    stack.serve(scenario)


def test_a_rollback_that_fails_ends_the_release_failed_and_says_so(stack: ReleaseStack) -> None:
    digest = fake_digest("stuck")
    stack.kube.set_image_behaviour(digest, "never-ready")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        deadline = time.monotonic() + 10
        while stack.writes("qa") == 0:  # deployed; the rollout watch now polls every second
            assert time.monotonic() < deadline, "QA was never deployed"
            await asyncio.sleep(0.01)
        stack.kube.inject_conflicts(15)  # every attempt at the rollback will conflict
        stack.kube.advance(700)  # past the progress deadline: the rollout has failed
        done = await run.finished(release)
        assert outcome(done) == "Failed", done
        reason = done["output"]["reason"]
        assert reason.startswith("rollout failed: ")
        assert "has timed out progressing" in reason
        assert "ROLLBACK FAILED" in reason and "kept changing under us" in reason
        assert stack.image("qa") == stack.image_in("qa", digest)
        assert stack.ledger.get_release(release, service=SERVICE).state == "Failed"

    stack.serve(scenario)


def test_a_deploy_that_keeps_failing_is_rolled_back_with_nothing_to_undo(
        stack: ReleaseStack) -> None:
    stack.kube.inject_conflicts(15)  # three attempts of five conflicts each

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", fake_digest("conflicted"))
        done = await run.finished(release)
        assert outcome(done) == "RolledBack", done
        assert "deploy_image" in done["output"]["reason"]
        assert "kept changing under us" in done["output"]["reason"]
        assert len(run.failed_tasks(f"{release}:qa")) == 3
        assert stack.image("qa") == OLD_IMAGE and stack.writes("qa") == 15

    stack.serve(scenario)


def test_a_missing_cluster_secret_fails_the_release_before_anything_changes(
        stack: ReleaseStack) -> None:
    stack.monkeypatch.delenv("SECRETS__PROD__KUBECONFIG")
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        run.approve(release)
        done = await run.finished(release)
        assert outcome(done) == "Failed", done
        assert done["output"]["environment"] == "prod"
        assert "SECRETS__PROD__KUBECONFIG is not set" in done["output"]["reason"]
        assert stack.image("prod") == OLD_IMAGE and stack.writes("prod") == 0
        assert stack.ledger.get_release(release, service=SERVICE).state == "Failed"

    stack.serve(scenario)
