"""A canary release's trace: its plan's steps as spans under production's environment span,
each analysis with its verdict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.azurite import Azurite
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import SERVICE
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.telemetry import ids
from shared.telemetry.pipelines import InMemory
from tests.releases.release_rig import Released, ReleaseStack, outcome
from tests.telemetry.test_release_trace import spans_of


@pytest.fixture
def canary_stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry,
                 azurite: Azurite, kube_factory: Callable[..., KubeSimulator],
                 monkeypatch: pytest.MonkeyPatch) -> ReleaseStack:
    """A release stack whose simulated pods answer through production's Service."""
    kube = kube_factory(standins=True)
    built = ReleaseStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)
    kube.create_service("prod", SERVICE)
    return built


def test_a_canary_releases_one_span_per_plan_step_and_analysis(
        canary_stack: ReleaseStack, exported: InMemory) -> None:
    stack = canary_stack
    url = stack.kube.service_url("prod", SERVICE)
    stack.policy(checks=[], prod_extra=(
        "        analysis:\n          interval: 30s\n          measurements: 2\n"
        "          metrics:\n            - name: success\n"
        f"              http: {{url: \"{url}/\", requests: 8, attemptTimeoutSeconds: 2}}\n"
        "              threshold: {min: 0.95}\n"
        "        strategy: {canary: {replicas: 4, steps: [{weight: 25}, {pause: 1m},"
        " {weight: 50}]}}\n"))
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> tuple[str, dict[str, Any]]:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        run.approve(release)
        return release, await run.finished(release, seconds=90)

    release, done = stack.serve(scenario)
    assert outcome(done) == "Completed", done
    spans = spans_of(exported)
    prod = [s for s in spans if s.attributes and s.attributes.get("release.environment") ==
            "prod" and s.name != "environment"]
    environment = ids.environment_span_id(release, "prod")
    assert all(s.parent is not None and s.parent.span_id == environment for s in prod)
    names = [s.name for s in sorted(prod, key=lambda s: (s.start_time or 0, s.end_time or 0))]
    assert names == ["gate", "promotion", "shift", "readiness", "verify", "analysis", "wait",
                     "shift", "readiness", "analysis", "promote", "readiness", "retire"]
    analyses = [s for s in prod if s.name == "analysis"]
    assert len({s.context.span_id for s in analyses}) == 2  # one per analysis step
    assert {s.attributes["release.outcome"] for s in analyses if s.attributes} == {"passed"}
    assert len({s.context.span_id for s in spans}) == len(spans)
