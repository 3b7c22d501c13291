"""The releases API end to end: list and show, manual rollback, redeploy, and their refusals.

Real parts (see release_stack.py): devhost runs the app, Azurite the ledger, docker-registry
the images, the Kubernetes simulator QA and production. Each scenario takes versions
through production first, as pushes to the registry do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from release_stack import ADMIN_TOKEN, Stack, run_scenario

from sandbox.azurite import Azurite
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import SERVICE
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles

ANN = {"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"}
Serve = Callable[[Callable[[Stack], Awaitable[None]]], None]


@pytest.fixture
def serve(tmp_path: Path, registry: LocalRegistry, tls_files: TlsFiles, azurite: Azurite,
          kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> Serve:
    def start(scenario: Callable[[Stack], Awaitable[None]]) -> None:
        run_scenario(tmp_path, registry, tls_files, azurite, kube, monkeypatch, scenario)

    return start


def scheduled(s: Stack, instance_id: str) -> list[str]:
    """The activities and sub-orchestrations an instance scheduled, in order (the polls of
    one rollout as one): what a replay of its history must schedule again."""
    assert s.host.engine is not None
    status = s.host.engine.status(instance_id, show_history=True)
    assert status is not None
    names: list[str] = []
    for event in status["historyEvents"]:
        if event["EventType"] in ("TaskScheduled", "SubOrchestrationInstanceCreated"):
            if not (event["Name"] == "await_rollout" and names[-1:] == ["await_rollout"]):
                names.append(event["Name"])
    return names


def one_line_error(body: dict) -> str:
    assert set(body) == {"error"} and "\n" not in body["error"], body
    return body["error"]


def test_list_and_show_with_filters_404_and_400(serve: Serve) -> None:
    async def scenario(s: Stack) -> None:
        v1, digest1 = await s.release("v1.0.0")
        v2, _ = await s.release("v2.0.0")

        code, listed = await s.get("/api/releases")
        assert code == 200
        assert [r["releaseId"] for r in listed] == [v2, v1]  # newest first
        first = listed[1]
        assert first["releaseId"] == f"{SERVICE}-{digest1[7:23]}"
        assert {k: first[k] for k in ("kind", "service", "version", "digest", "state",
                                      "environment")} == {
            "kind": "release", "service": SERVICE, "version": "v1.0.0", "digest": digest1,
            "state": "Completed", "environment": "prod"}
        assert {"step", "reason", "createdAt", "updatedAt"} <= set(first)
        assert first["statusUri"] == s.url(f"/api/releases/{v1}")

        code, listed = await s.get(f"/api/releases?service={SERVICE}&state=Completed&limit=1")
        assert (code, [r["releaseId"] for r in listed]) == (200, [v2])
        code, listed = await s.get("/api/releases?state=running,waitingforapproval")
        assert (code, listed) == (200, [])
        assert (await s.get("/api/releases?service=other"))[1] == []

        code, body = await s.get("/api/releases?state=Done")
        assert code == 400 and "unknown state 'Done'" in one_line_error(body)
        assert "WaitingForApproval" in body["error"]
        for query, words in [("limit=0", "limit must be"), ("limit=abc", "limit must be"),
                             ("limit=1001", "limit must be"), ("status=Completed",
                                                               "unknown query parameter"),
                             ("service=a/b", "not a service name")]:
            code, body = await s.get(f"/api/releases?{query}")
            assert code == 400 and words in one_line_error(body), (query, body)

        code, shown = await s.get(listed_uri := first["statusUri"])
        assert code == 200, shown
        assert listed_uri.endswith(v1)
        assert shown["state"] == "Completed" and shown["kind"] == "release"
        assert {env: stage["state"] for env, stage in shown["stages"].items()} == {
            "qa": "Healthy", "prod": "Healthy"}
        assert shown["durable"]["runtimeStatus"] == "Completed"
        assert shown["durable"]["customStatus"]["step"] == "Completed"
        assert shown["durable"]["output"]["outcome"] == "Completed"
        timeline = shown["timeline"]
        assert timeline == sorted(timeline, key=lambda e: e["at"])
        assert timeline[0]["source"] == "registry"
        assert "push" in timeline[0]["what"] and "started" in timeline[0]["what"]
        steps = [(e["environment"], e["what"]) for e in timeline if e["source"] ==
                 "orchestration"]
        assert ("prod", "approval") in steps and ("prod", "promote") in steps
        assert steps[-1] == (None, "Completed")
        assert ("prod", "stage Healthy") in [(e["environment"], e["what"]) for e in timeline]
        text = str(shown)
        assert ADMIN_TOKEN not in text and "kubeconfig" not in text  # no snapshot, no secret

        code, body = await s.get(f"/api/releases/{SERVICE}-0000000000000000")
        assert code == 404
        assert one_line_error(body) == f"no release or operation '{SERVICE}-0000000000000000'"

    serve(scenario)


def test_manual_rollback_restores_the_previous_good_digest(
        serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")  # the sign-in names the operator

    async def scenario(s: Stack) -> None:
        v1, digest1 = await s.release("v1.0.0")
        v2, digest2 = await s.release("v2.0.0")
        assert s.image("prod") == s.prod_image(digest2)

        code, started = await s.post(f"/api/releases/{v2}/rollback", headers=ANN, body={
            "environment": "prod", "reason": "checkout errors since v2"})
        assert code == 202, started
        op = started["id"]
        assert op == f"rollback:{SERVICE}:prod:1"
        assert started["by"] == "ann@example.com"
        assert started["release"] == {"releaseId": v1, "version": "v1.0.0", "digest": digest1,
                                      "image": s.prod_image(digest1)}
        assert started["replaces"]["releaseId"] == v2
        assert started["policy"]["from"] == "snapshot"
        assert started["statusUri"] == s.url(f"/api/releases/{op}")

        assert (await s.finished(op))["output"]["outcome"] == "Completed"
        assert scheduled(s, op) == [
            "claim_stage", "snapshot_deployment", "deploy_image", "await_rollout",
            "record_deployment", "mark_release_stage", "mark_release_stage", "record_release"]
        assert s.image("prod") == s.prod_image(digest1)
        assert s.image("qa") == s.qa_image(digest2)  # another environment is left alone
        cause = s.change_cause("prod")
        assert "ann@example.com" in cause and "checkout errors since v2" in cause
        assert op in cause and "v2.0.0" in cause and "v1.0.0" in cause
        prod = s.ledger.environment_state(SERVICE, "prod")
        assert prod.current.release_id == v1 and prod.current.digest == digest1
        assert prod.last_good.release_id == v1
        assert prod.current.image == s.prod_image(digest1)
        rolled_back = s.ledger.get_release(v2, service=SERVICE)
        assert rolled_back.stages["prod"].state == "RolledBack"
        assert "ann@example.com" in rolled_back.stages["prod"].detail
        assert rolled_back.state == "Completed"  # the release itself did complete

        code, shown = await s.get(started["statusUri"])
        assert code == 200
        assert (shown["kind"], shown["state"], shown["environment"]) == (
            "rollback", "Completed", "prod")
        assert (shown["version"], shown["digest"]) == ("v1.0.0", digest1)
        assert "by ann@example.com: checkout errors since v2" in shown["reason"]
        assert shown["durable"]["customStatus"]["operation"]["by"] == "ann@example.com"
        assert [e["what"] for e in shown["timeline"] if e["source"] == "orchestration"] == [
            "rollback", "deploy", "rollout", "Completed"]
        code, listed = await s.get("/api/releases")
        assert [(r["releaseId"], r["kind"]) for r in listed][0] == (op, "rollback")

        code, body = await s.post(f"/api/releases/{v2}/rollback", headers=ANN,
                                  body={"environment": "prod", "reason": "again"})
        assert code == 409 and f"{v2} is not what runs in prod ({v1} runs there)" in \
            one_line_error(body)
        # v2 no longer counts as good in prod, and nothing before v1 ever ran there
        code, body = await s.post(f"/api/releases/{v1}/rollback", headers=ANN,
                                  body={"environment": "prod", "reason": "and again"})
        assert code == 409 and "no earlier good release" in one_line_error(body)

        # QA still runs v2; rolling QA back goes to v1 there and numbers on per environment.
        # Without App Service Authentication the header is anyone's: it names nobody.
        monkeypatch.delenv("WEBSITE_AUTH_ENABLED")
        code, started = await s.post(f"/api/releases/{v2}/rollback", headers=ANN,
                                     body={"environment": "qa", "reason": "match prod"})
        assert code == 202 and started["id"] == f"rollback:{SERVICE}:qa:1"
        assert started["by"] == "anonymous"
        assert (await s.finished(started["id"]))["output"]["outcome"] == "Completed"
        assert s.image("qa") == s.qa_image(digest1)

    serve(scenario)


def test_no_earlier_good_release_is_409_and_bad_requests_are_refused(serve: Serve) -> None:
    async def scenario(s: Stack) -> None:
        v1, _ = await s.release("v1.0.0")
        code, body = await s.post(f"/api/releases/{v1}/rollback",
                                  body={"environment": "prod", "reason": "bad"})
        assert code == 409
        assert one_line_error(body).startswith(
            f"no earlier good release of {SERVICE} in prod to roll back to")

        refusals = [
            (f"/api/releases/{SERVICE}-ffffffffffffffff/rollback",
             {"environment": "prod", "reason": "x"}, 404, "no release"),
            (f"/api/releases/{v1}/rollback", {"environment": "prod"}, 400,
             "reason is required"),
            (f"/api/releases/{v1}/rollback", {"environment": "prod", "reason": " "}, 400,
             "reason is required"),
            (f"/api/releases/{v1}/rollback", {"environment": "stage", "reason": "x"}, 400,
             "has no environment 'stage' (its environments: qa, prod)"),
            (f"/api/releases/{v1}/rollback", ["prod"], 400, "must be a JSON object"),
            (f"/api/releases/{v1}/redeploy", {"environment": "qa", "force": True}, 400,
             "unknown field 'force'"),
            (f"/api/releases/{v1}/redeploy", {"environment": 3}, 400,
             "environment is required"),
            (f"/api/releases/rollback:{SERVICE}:prod:1/redeploy", {"environment": "qa"}, 400,
             "is an operation, not a release"),
        ]
        for path, body, status, words in refusals:
            code, answer = await s.post(path, body)
            assert code == status and words in one_line_error(answer), (path, body, answer)
        code, answer = await s.post(f"/api/releases/{v1}/redeploy", raw=b"{nope")
        assert code == 400 and "not valid JSON" in one_line_error(answer)
        # nothing was started or recorded
        assert [r.release_id for r in s.ledger.releases(SERVICE)] == [v1]
        assert s.host.engine is not None
        assert s.host.engine.query(prefix="rollback:") == []
        assert s.host.engine.query(prefix="redeploy:") == []

    serve(scenario)


def test_redeploy_of_a_past_release_deploys_its_digest_and_records_it(
        serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")

    async def scenario(s: Stack) -> None:
        v1, digest1 = await s.release("v1.0.0")
        v2, digest2 = await s.release("v2.0.0")

        code, started = await s.post(f"/api/releases/{v1}/redeploy", headers=ANN,
                                     body={"environment": "qa", "reason": "reproduce #42"})
        assert code == 202, started
        assert started["id"] == f"redeploy:{SERVICE}:qa:1"
        assert started["release"]["image"] == s.qa_image(digest1)
        assert started["replaces"]["releaseId"] == v2
        assert (await s.finished(started["id"]))["output"]["outcome"] == "Completed"
        assert s.image("qa") == s.qa_image(digest1)
        assert s.image("prod") == s.prod_image(digest2)
        qa = s.ledger.environment_state(SERVICE, "qa")
        assert (qa.current.release_id, qa.current.digest) == (v1, digest1)
        assert qa.last_good.release_id == v1
        assert "redeployed by ann@example.com" in \
            s.ledger.get_release(v1, service=SERVICE).stages["qa"].detail
        code, shown = await s.get(started["statusUri"])
        assert (shown["kind"], shown["state"]) == ("redeploy", "Completed")
        assert "by ann@example.com: reproduce #42" in shown["reason"]

        # production gets the promoted image: prod/<repository>@digest
        code, started = await s.post(f"/api/releases/{v1}/redeploy",
                                     body={"environment": "prod"})
        assert code == 202, started
        assert started["id"] == f"redeploy:{SERVICE}:prod:1"
        assert started["release"]["image"] == s.prod_image(digest1)
        assert (await s.finished(started["id"]))["output"]["outcome"] == "Completed"
        assert s.image("prod") == s.prod_image(digest1)
        assert s.ledger.environment_state(SERVICE, "prod").current.release_id == v1
        # ...so rolling production back from v1 now goes to v2, the good one before it
        code, started = await s.post(f"/api/releases/{v1}/rollback",
                                     body={"environment": "prod", "reason": "v1 was worse"})
        assert code == 202 and started["release"]["releaseId"] == v2
        assert started["id"] == f"rollback:{SERVICE}:prod:2"
        assert (await s.finished(started["id"]))["output"]["outcome"] == "Completed"
        assert s.image("prod") == s.prod_image(digest2)

        # a release that never got through the gate cannot be redeployed past it
        v3, _ = await s.push("v3.0.0")
        await s.until(v3, lambda st: (st.get("customStatus") or {}).get("step") == "approval")
        for _ in range(200):  # the ledger row follows the custom status
            if s.ledger.get_release(v3, service=SERVICE).state == "WaitingForApproval":
                break
            await asyncio.sleep(0.05)
        code, body = await s.post(f"/api/releases/{v3}/redeploy", body={"environment": "prod"})
        assert code == 409
        assert one_line_error(body) == (
            f"{v3} was never deployed to prod (its prod stage is WaitingForApproval); a "
            "redeploy puts back only what ran there and skips no gate")

    serve(scenario)


def test_a_redeploy_whose_image_crashes_is_restored(serve: Serve) -> None:
    async def scenario(s: Stack) -> None:
        v1, digest1 = await s.release("v1.0.0")
        v2, digest2 = await s.release("v2.0.0")
        s.kube.set_image_behaviour(digest1, "crash")

        code, started = await s.post(f"/api/releases/{v1}/redeploy", headers=ANN,
                                     body={"environment": "qa"})
        assert code == 202, started
        done = await s.finished(started["id"])
        assert done["output"]["outcome"] == "RolledBack", done
        assert "CrashLoopBackOff" in done["output"]["reason"]
        assert s.image("qa") == s.qa_image(digest2)
        qa = s.ledger.environment_state(SERVICE, "qa")
        assert qa.current.release_id == v2 and qa.last_good.release_id == v2
        stage = s.ledger.get_release(v1, service=SERVICE).stages["qa"]
        assert stage.state == "RolledBack" and "CrashLoopBackOff" in stage.detail
        code, shown = await s.get(started["statusUri"])
        assert (shown["state"], shown["stages"]["qa"]["state"]) == ("RolledBack", "RolledBack")
        # v1 crashed in QA just now, so it no longer counts as a good release to go back to
        code, body = await s.post(f"/api/releases/{v2}/rollback",
                                  body={"environment": "qa", "reason": "x"})
        assert code == 409 and "no earlier good release" in one_line_error(body)

    serve(scenario)


def test_a_rollback_whose_image_crashes_puts_back_what_ran(serve: Serve) -> None:
    async def scenario(s: Stack) -> None:
        v1, digest1 = await s.release("v1.0.0")
        v2, digest2 = await s.release("v2.0.0")
        s.kube.set_image_behaviour(digest1, "crash")
        code, started = await s.post(f"/api/releases/{v2}/rollback",
                                     body={"environment": "prod", "reason": "slow"})
        assert code == 202, started
        done = await s.finished(started["id"])
        assert done["output"]["outcome"] == "RolledBack", done
        assert "CrashLoopBackOff" in done["output"]["reason"]
        assert scheduled(s, started["id"]) == [
            "claim_stage", "snapshot_deployment", "deploy_image", "await_rollout",
            "rollback_deployment", "record_release"]
        assert s.image("prod") == s.prod_image(digest2)
        prod = s.ledger.environment_state(SERVICE, "prod")
        assert prod.current.release_id == v2
        assert s.ledger.get_release(v2, service=SERVICE).stages["prod"].state == "Healthy"

    serve(scenario)


def test_one_operation_at_a_time_per_environment(serve: Serve) -> None:
    async def scenario(s: Stack) -> None:
        v1, digest1 = await s.release("v1.0.0")
        v2, _ = await s.release("v2.0.0")
        s.kube.rollout_seconds = 60  # the simulator's clock is frozen: it waits for advance()
        code, started = await s.post(f"/api/releases/{v1}/redeploy",
                                     body={"environment": "qa"})
        assert code == 202, started
        op = started["id"]
        await s.until(op, lambda st: (st.get("customStatus") or {}).get("step") == "deploy")

        for path, body in [(f"/api/releases/{v2}/rollback", {"environment": "qa",
                                                             "reason": "x"}),
                           (f"/api/releases/{v2}/redeploy", {"environment": "qa"})]:
            code, answer = await s.post(path, body)
            assert code == 409, answer
            assert one_line_error(answer) == (
                f"operation {op} is still running in qa; wait for it to finish")
        code, shown = await s.get(f"/api/releases/{op}")
        assert (code, shown["state"], shown["kind"]) == (200, "Running", "redeploy")
        assert shown["durable"]["runtimeStatus"] == "Running"

        s.kube.advance(120)
        assert (await s.finished(op))["output"]["outcome"] == "Completed"
        assert s.image("qa") == s.qa_image(digest1)
        s.kube.rollout_seconds = 0
        code, started = await s.post(f"/api/releases/{v1}/rollback",
                                     body={"environment": "qa", "reason": "back to v2"})
        assert code == 202 and started["id"] == f"rollback:{SERVICE}:qa:2", started

    serve(scenario)
