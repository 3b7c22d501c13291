"""A release run through devhost is one trace: a root span, a span per environment and per
step, with the orchestration's own times; its metrics and log records say which release."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan

from shared.telemetry import ids
from shared.telemetry.pipelines import InMemory
from tests.releases.release_rig import Released, ReleaseStack, outcome


def spans_of(exported: InMemory) -> list[ReadableSpan]:
    return list(exported.spans.get_finished_spans())


def steps(spans: list[ReadableSpan]) -> Counter[tuple[str | None, str]]:
    """How many spans of each (environment, name)."""
    return Counter((str(s.attributes.get("release.environment"))
                    if s.attributes and "release.environment" in s.attributes else None, s.name)
                   for s in spans)


def metric_points(exported: InMemory) -> dict[str, list[Any]]:
    """Metric name → its data points."""
    data = exported.metrics.get_metrics_data()
    points: dict[str, list[Any]] = {}
    if data is None:
        return points
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def test_a_release_through_qa_the_gate_and_prod_is_one_trace(
        stack: ReleaseStack, exported: InMemory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "shared")  # as host.json's "default": "Information"
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> str:
        return await run.completed("v1.0.0", digest)

    release = stack.serve(scenario)
    spans = spans_of(exported)
    assert steps(spans) == Counter({
        (None, "release"): 1, ("qa", "environment"): 1, ("prod", "environment"): 1,
        ("qa", "deploy"): 1, ("qa", "readiness"): 1,
        ("prod", "gate"): 1, ("prod", "promotion"): 1, ("prod", "deploy"): 1,
        ("prod", "readiness"): 1})
    assert {s.context.trace_id for s in spans} == {ids.trace_id(release)}
    assert len({s.context.span_id for s in spans}) == len(spans)  # one span per step
    by_id = {s.context.span_id: s for s in spans}
    root = by_id[ids.release_span_id(release)]
    assert root.parent is None and root.name == "release"
    assert root.attributes is not None
    assert {key: root.attributes[key] for key in (
        "release.id", "release.service", "release.version", "release.digest",
        "release.outcome")} == {"release.id": release, "release.service": "delivery",
                                "release.version": "v1.0.0", "release.digest": digest,
                                "release.outcome": "Completed"}
    for span in spans:
        if span is root:
            continue
        assert span.parent is not None
        parent = by_id[span.parent.span_id]  # every parent was emitted too
        expected = "release" if span.name == "environment" else "environment"
        assert parent.name == expected, span.name
        assert span.attributes is not None and parent.attributes is not None
        assert span.attributes["release.id"] == release
        assert span.attributes.get("release.environment") == \
            parent.attributes.get("release.environment", span.attributes[
                "release.environment"])
        assert span.start_time is not None and span.end_time is not None
        assert parent.start_time is not None and parent.end_time is not None
        assert parent.start_time <= span.start_time <= span.end_time <= parent.end_time
    gate = by_id[ids.span_id(release, "prod", "gate", 0)]
    assert gate.attributes is not None and gate.attributes["release.outcome"] == "Approved"

    points = metric_points(exported)
    [ended] = points["release.outcomes"]
    assert ended.value == 1 and ended.attributes == {"release.service": "delivery",
                                                     "release.outcome": "Completed"}
    [lead_time] = points["release.lead_time"]
    assert lead_time.count == 1 and lead_time.sum > 0
    [waited] = points["release.approval_wait"]
    assert waited.count == 1 and waited.attributes["release.outcome"] == "Approved"
    assert "release.rollbacks" not in points and "release.time_to_detect" not in points

    logs = [record.log_record for record in exported.logs.get_finished_logs()]
    ended_lines = [log for log in logs if log.body == f"release {release} ended: Completed"]
    assert len(ended_lines) == 1  # the orchestrator's line, not once per replay
    assert ended_lines[0].attributes is not None
    assert ended_lines[0].attributes["release.id"] == release
    # The activities' records too (the ledger's, here): every one names its release.
    assert len(logs) > 1
    assert all(log.attributes and log.attributes.get("release.id") == release for log in logs)


def test_a_failed_prod_deploy_is_rolled_back_and_measured(
        stack: ReleaseStack, exported: InMemory) -> None:
    digest = stack.push("v2.0.0")
    stack.kube.set_image_behaviour(f"prod/{stack.repository}@{digest}", "crash")  # prod only

    async def scenario(run: Released) -> tuple[str, dict[str, Any]]:
        release = run.start("v2.0.0", digest)
        await run.at_gate(release)
        run.approve(release)
        return release, await run.finished(release)

    release, done = stack.serve(scenario)
    assert outcome(done) == "RolledBack", done
    spans = spans_of(exported)
    counted = steps(spans)
    assert counted[("prod", "restore")] == 1 and counted[(None, "release")] == 1
    by_id = {s.context.span_id: s for s in spans}
    root = by_id[ids.release_span_id(release)]
    assert root.attributes is not None and root.attributes["release.outcome"] == "RolledBack"
    readiness = by_id[ids.span_id(release, "prod", "readiness", 0)]
    assert readiness.attributes is not None and readiness.attributes["release.outcome"] == "failed"
    points = metric_points(exported)
    [rollback] = points["release.rollbacks"]
    assert rollback.value == 1 and rollback.attributes["release.reason_kind"] == "readiness"
    assert [p.count for p in points["release.time_to_detect"]] == [1]
    assert [p.count for p in points["release.time_to_restore"]] == [1]
    [ended] = points["release.outcomes"]
    assert ended.attributes["release.outcome"] == "RolledBack"
    assert "release.lead_time" not in points


def test_a_paused_failure_rolled_back_at_its_deadline_is_measured_from_the_failure(
        stack: ReleaseStack, exported: InMemory) -> None:
    stack.policy(checks=[], prod_extra=(
        "        rollback: {onFailure: environment, pauseForHuman: true, pauseDeadline: 2h}\n"))
    digest = stack.push("v2.0.0")
    stack.kube.set_image_behaviour(f"prod/{stack.repository}@{digest}", "crash")

    async def scenario(run: Released) -> tuple[str, dict[str, Any]]:
        release = run.start("v2.0.0", digest)
        await run.at_gate(release)
        run.approve(release)
        await run.until(release, lambda s: ((s.get("customStatus") or {}).get(
            "waitingFor") or {}).get("kind") == "failure")
        await run.advance_to(run.clock.now() + timedelta(hours=2, seconds=1))
        return release, await run.finished(release)

    release, done = stack.serve(scenario)
    assert outcome(done) == "RolledBack", done
    counted = steps(spans_of(exported))
    assert counted[("prod", "paused")] == counted[("prod", "rollback")] == 1
    assert counted[("prod", "restore")] == 0  # the automatic restore did not run
    points = metric_points(exported)
    [rollback] = points["release.rollbacks"]
    assert rollback.attributes["release.reason_kind"] == "decided"
    [restored] = points["release.time_to_restore"]
    assert restored.count == 1 and restored.sum >= 2 * 3600  # the wait for a decision in it
    assert [p.count for p in points["release.time_to_detect"]] == [1]


def test_operations_add_nothing_to_the_releases_traces_or_metrics(
        stack: ReleaseStack, exported: InMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollback and a redeploy (operations, with their own journal and, for the redeploy,
    `deploy_environment`) write no span and count no release."""
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")  # the sign-in names the operator
    first, second = stack.push("v1.0.0"), stack.push("v2.0.0")

    async def operate(run: Released, release: str, kind: str) -> None:
        async with aiohttp.ClientSession() as http, http.post(
                f"{run.host.base_url}/api/releases/{release}/{kind}",
                json={"environment": "prod", "reason": "telemetry test"},
                headers={"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"}) as answer:
            started = await answer.json(content_type=None)
            assert answer.status == 202, started
        done = await run.finished(started["id"])
        assert outcome(done) == "Completed", done

    async def scenario(run: Released) -> int:
        await run.completed("v1.0.0", first)
        v2 = await run.completed("v2.0.0", second)
        before = len(spans_of(exported))
        await operate(run, v2, "rollback")
        await operate(run, v2, "redeploy")
        return before

    before = stack.serve(scenario)
    assert len(spans_of(exported)) == before == 2 * 9
    [ended] = metric_points(exported)["release.outcomes"]
    assert ended.value == 2  # the two releases, no operation


def test_a_retried_release_is_a_second_run_in_the_same_trace(
        stack: ReleaseStack, exported: InMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A release that failed before its first environment (no signing key) is retried under
    the same id: its second run's spans join its trace with ids of their own."""
    monkeypatch.delenv("APPROVAL_SIGNING_KEY")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")  # the sign-in names who retries
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> str:
        release = run.start("v1.0.0", digest)
        assert outcome(await run.finished(release)) == "Failed"
        monkeypatch.setenv("APPROVAL_SIGNING_KEY", stack.signing_key)
        async with aiohttp.ClientSession() as http, http.post(
                f"{run.host.base_url}/api/releases/{release}/retry",
                json={"reason": "signing key set"},
                headers={"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"}) as answer:
            assert answer.status == 202, await answer.text()
        await run.at_gate(release)
        run.approve(release)
        assert outcome(await run.finished(release)) == "Completed"
        return release

    release = stack.serve(scenario)
    spans = spans_of(exported)
    assert {s.context.trace_id for s in spans} == {ids.trace_id(release)}
    assert len({s.context.span_id for s in spans}) == len(spans)
    roots = {s.context.span_id: s for s in spans if s.parent is None}
    assert set(roots) == {ids.release_span_id(release), ids.release_span_id(release, 1)}
    assert roots[ids.release_span_id(release)].attributes["release.outcome"] == "Failed"
    assert roots[ids.release_span_id(release, 1)].attributes["release.outcome"] == "Completed"
    by_id = {s.context.span_id: s for s in spans}
    for span in spans:  # the second run's tree holds together, sub-orchestrations included
        if span.parent is not None:
            assert span.parent.span_id in by_id, span.name
    assert steps(spans)[("prod", "deploy")] == 1
