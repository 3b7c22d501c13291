"""What people see of a Helm release, through the real triggers in devhost: the approval
page names the chart beside the image; after the release, the ledger, the dashboard, the
release page, the releases API and `releasectl show` name each environment's chart, its
digest and Helm's revision."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from release_rig import Released, outcome
from test_helm_releases import HelmStack

from sandbox.azurite import Azurite
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import SERVICE
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.ledger import DeployedChart
from tests.cli.cli_runner import ctl
from tests.dashboard.test_dashboard_view import Text


@pytest.fixture
def helm_stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry, azurite: Azurite,
               kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> HelmStack:
    return HelmStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)


def test_chart_digest_and_revision_are_shown_wherever_the_release_is(
        helm_stack: HelmStack) -> None:
    stack = helm_stack
    chart = stack.push_chart("1.0.0")
    v1 = stack.push("v1.0.0")
    short = chart.digest[:19]

    async def scenario(released: Released) -> None:
        base = released.host.base_url
        release = released.start("v1.0.0", v1)
        status = await released.at_gate(release, seconds=60)
        (link,) = status["customStatus"]["waitingFor"]["approvalLinks"]
        async with aiohttp.ClientSession() as http:
            async def get(path: str) -> str:
                async with http.get(base + path) as answer:
                    assert answer.status == 200, (path, answer.status)
                    return await answer.text()

            approval = Text(await get(link["url"].removeprefix("http://approvals.test")))
            assert f"Helm chart delivery 1.0.0 {chart.digest} (as deployed in qa)" \
                in approval.text

            released.approve(release)
            done = await released.finished(release, seconds=60)
            assert outcome(done) == "Completed", done

            for environment in ("qa", "prod"):
                state = stack.ledger.environment_state(SERVICE, environment)
                assert state.current is not None and state.last_good is not None
                assert (state.current.chart, state.current.revision) == (
                    DeployedChart(SERVICE, "1.0.0", chart.digest), 1)
                assert state.last_good == state.current

            overview = json.loads(await get("/api/dashboard?format=json"))
            (row,) = overview["services"]
            assert [(c["environment"], c["current"]["helm"]) for c in row["cells"]] == [
                (name, {"chart": SERVICE, "version": "1.0.0", "digest": short,
                        "fullDigest": chart.digest, "revision": 1}) for name in ("qa", "prod")]
            assert "chart delivery 1.0.0 · Helm revision 1" in Text(
                await get("/api/dashboard")).text

            page = Text(await get(f"/api/dashboard/releases/{release}")).text
            for name in ("qa", "prod"):
                assert f"{name} delivery 1.0.0 {short} 1" in page

            shown = json.loads(await get(f"/api/releases/{release}"))
            assert shown["helm"] == {name: {"chart": SERVICE, "version": "1.0.0",
                                            "digest": chart.digest, "revision": 1}
                                     for name in ("qa", "prod")}
        code, out, err = await asyncio.to_thread(ctl, "show", release, url=base)
        assert (code, err) == (0, "")
        lines = [" ".join(line.split()) for line in out.splitlines()]
        assert f"prod delivery 1.0.0 {chart.digest} 1" in lines

    stack.serve(scenario)
