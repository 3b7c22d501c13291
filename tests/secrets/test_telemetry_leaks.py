"""No secret in the app's telemetry: the spans, metrics and log records a release exports
(in-memory exporters, a release with authenticated checks run through devhost)."""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox.kube.pytest_fixtures import *  # noqa: F403 (the kube fixture)
from shared.telemetry import ids, spans
from shared.telemetry.pipelines import InMemory
from tests.releases.release_rig import Released, ReleaseStack
from tests.telemetry.conftest import exported, stack  # noqa: F401 (fixtures)


def test_a_release_exports_no_secret(stack: ReleaseStack, exported: InMemory,  # noqa: F811
                                     leak_guard) -> None:
    leak_guard.values |= stack.secret_values  # kubeconfig token, probe token, Teams URL, key
    probe = stack.check_server(lambda headers: (
        200 if headers.get("Authorization") == stack.probe_token else 401, {"status": "ok"}))
    stack.policy(checks=[probe.url])
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> str:
        return await run.completed("v1.0.0", digest)

    release = stack.serve(scenario)
    assert probe.calls > 0  # the secret was used on the way
    assert len(exported.spans.get_finished_spans()) > 5 and exported.logs.get_finished_logs()
    assert {s.context.trace_id for s in exported.spans.get_finished_spans()} == {
        ids.trace_id(release)}
    assert leak_guard.telemetry_leaks(exported) == []


def test_the_guard_sees_a_value_in_an_exported_span(exported: InMemory,  # noqa: F811
                                                    leak_guard) -> None:
    value = leak_guard.value("token")
    now = datetime.now(UTC)
    spans.emit("deploy", "r1", ids.span_id("r1", "qa", "deploy"), None, now, now,
               {"release.id": "r1", "header": f"Bearer {value}"})
    assert len(leak_guard.telemetry_leaks(exported)) == 1
