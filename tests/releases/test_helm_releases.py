"""Releases of Helm chart targets, end to end through devhost on real parts: the sample chart
pushed to the registry by Helm's own code, Helm's SDK against the Kubernetes simulator.

QA: `upgrade --install` of image and chart by digest, `helm test`; the gate; promotion of
image and chart to prod/; production; a version that crashes in production is rolled back
with `helm rollback` to the last good revision; Helm's history, read back without Helm,
shows what the CLI would."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import helm_python
import pytest
from release_rig import Released, ReleaseStack, outcome

from sandbox.azurite import Azurite
from sandbox.chart_push import PushedChart, push_chart
from sandbox.kube.pytest_fixtures import ADMIN_TOKEN
from sandbox.kube.server import KubeSimulator
from sandbox.policy_text import SERVICE, helm_qa_then_prod
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.policy.loader import parse_policy
from shared.registry.client import RegistryClient, RegistryEndpoint

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "delivery"
ANN = {"X-MS-CLIENT-PRINCIPAL-NAME": "ann@example.com"}


class HelmStack(ReleaseStack):
    """A ReleaseStack whose environments are Helm releases of the sample chart."""

    def __init__(self, *args: object, rollout_timeout: str = "10s") -> None:
        super().__init__(*args, deployments=False)  # type: ignore[arg-type]
        self.chart_repository = f"{self.repository}-charts/{SERVICE}"
        # Production's chart gets a secret value: Helm stores it in the cluster, and the
        # rig checks that no status, history or ledger row ever holds it.
        self.helm_policy(rollout_timeout=rollout_timeout,
                         prod_helm="secretValues: {probe.token: probe-token}")
        self.client = RegistryClient(RegistryEndpoint(self.registry.endpoint, "anonymous",
                                                      str(self.tls.ca)))

    def helm_policy(self, **options: Any) -> None:
        """Write the Helm policy (`helm_qa_then_prod`'s options)."""
        options.setdefault("rollout_timeout", "10s")
        options.setdefault("prod_helm", "secretValues: {probe.token: probe-token}")
        text = helm_qa_then_prod(self.registry.endpoint, self.tls.ca, self.repository,
                                 self.chart_repository, **options)
        (self.tmp_path / "policy.yaml").write_text(text)
        self.service = parse_policy(text, source="policy.yaml").service(SERVICE)

    def push_chart(self, version: str) -> PushedChart:
        """`helm package` + `helm push` of the sample chart at `version`, as CI does."""
        return push_chart(CHART, f"oci://{self.registry_host}/{self.repository}-charts",
                          self.tls.ca, version=version, app_version=version)

    def history(self, namespace: str) -> list[tuple[int, str, str]]:
        """(revision, status, chart version) of the release, decoded from Helm's Secrets."""
        return [(r.revision, r.status, r.chart_version)
                for r in self.kube.helm_releases(namespace, SERVICE)]


@pytest.fixture
def helm_stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry, azurite: Azurite,
               kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> HelmStack:
    return HelmStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)


def test_charts_go_through_qa_and_production_and_a_crash_is_rolled_back_by_helm(
        helm_stack: HelmStack) -> None:
    stack = helm_stack
    chart_1 = stack.push_chart("1.0.0")
    v1 = stack.push("v1.0.0")
    chart_2 = stack.push_chart("2.0.0")
    v2 = stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        first = released.start("v1.0.0", v1)
        status = await released.at_gate(first, seconds=60)
        assert stack.image("qa") == stack.image_in("qa", v1)
        assert stack.history("qa") == [(1, "deployed", "1.0.0")]
        assert status["customStatus"]["evidence"]["qa"] == \
            "helm test: 1 test hook succeeded (delivery-test-health)"
        released.approve(first)
        done = await released.finished(first, seconds=60)
        assert outcome(done) == "Completed", done
        assert stack.image("prod") == stack.image_in("prod", v1)
        assert stack.history("prod") == [(1, "deployed", "1.0.0")]
        assert done["customStatus"]["helm"] == {
            name: {"chart": SERVICE, "version": "1.0.0", "digest": chart_1.digest,
                   "revision": 1} for name in ("qa", "prod")}
        # The chart QA verified went to prod/ beside the image, the same bytes.
        promoted = f"prod/{stack.chart_repository}"
        assert stack.client.manifest_digest(promoted, "1.0.0") == chart_1.digest

        stack.kube.set_image_behaviour(f"prod/{stack.repository}@", "crash")
        stack.kube.set_image_behaviour(f"prod/{stack.repository}@{v1}", "ok")
        second = released.start("v2.0.0", v2)
        await released.at_gate(second, seconds=60)
        assert stack.history("qa") == [(1, "superseded", "1.0.0"), (2, "deployed", "2.0.0")]
        released.approve(second)
        done = await released.finished(second, seconds=90)
        assert outcome(done) == "RolledBack", done
        reason = done["output"]["reason"]
        assert "helm revision 2 failed" in reason and "CrashLoopBackOff" in reason
        assert stack.image("prod") == stack.image_in("prod", v1)
        assert stack.history("prod") == [(1, "superseded", "1.0.0"), (2, "failed", "2.0.0"),
                                         (3, "deployed", "1.0.0")]
        assert stack.client.manifest_digest(promoted, "2.0.0") == chart_2.digest
        # Helm keeps the values, the secret one too, in its records in the cluster (only).
        with helm_python.Config(kubeconfig_content=stack.kube.kubeconfig(ADMIN_TOKEN, "prod"),
                                namespace="prod", qps=50, burst_limit=100) as helm:
            assert helm.get_values(SERVICE)["probe"] == {"token": stack.probe_token}
        prod = stack.ledger.environment_state(SERVICE, "prod")
        assert prod.last_good is not None and prod.last_good.release_id == first
        assert prod.current is not None and prod.current.release_id == first
        steps = [entry["step"] for entry in done["customStatus"]["history"]]
        assert "promote chart" in steps

    stack.serve(scenario)


def test_a_release_waits_for_its_chart_version_then_fails_saying_which(
        helm_stack: HelmStack) -> None:
    stack = helm_stack
    v1 = stack.push("v1.0.0")  # CI pushed the image; the chart comes later
    v2 = stack.push("v2.0.0")  # … and this one's chart never comes

    async def scenario(released: Released) -> None:
        first = released.start("v1.0.0", v1)
        status = await released.until(first, lambda s: (s["customStatus"] or {}).get(
            "step") == "waiting for chart", step=0)
        assert f"{stack.chart_repository}:1.0.0 is not in the registry" in \
            status["customStatus"]["history"][-1]["detail"]
        assert stack.history("qa") == []
        stack.push_chart("1.0.0")
        await released.at_gate(first, seconds=60)  # the next look (30 s on) finds it
        assert stack.history("qa") == [(1, "deployed", "1.0.0")]

        second = released.start("v2.0.0", v2)
        await released.until(second, lambda s: (s["customStatus"] or {}).get(
            "step") == "waiting for chart", step=0)
        await released.advance_to(released.clock.now() + timedelta(minutes=11))
        done = await released.finished(second, seconds=60)
        assert outcome(done) == "Failed"
        assert done["output"]["reason"] == (
            f"nothing deployed in qa: oci://{stack.registry_host}/{stack.chart_repository}"
            ":2.0.0 is not in the registry after waiting 10m for it")
        assert stack.history("qa") == [(1, "deployed", "1.0.0")]
        assert stack.ledger.get_release(second, service=SERVICE).state == "Failed"

    stack.serve(scenario)


def test_manual_rollback_and_redeploy_put_helm_revisions_back(
        helm_stack: HelmStack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = helm_stack
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")  # the sign-in names the operator
    stack.push_chart("1.0.0")
    v1 = stack.push("v1.0.0")
    stack.push_chart("2.0.0")
    v2 = stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        first = await released.completed("v1.0.0", v1)
        second = await released.completed("v2.0.0", v2)
        assert stack.history("prod") == [(1, "superseded", "1.0.0"), (2, "deployed", "2.0.0")]

        async with aiohttp.ClientSession() as http:
            async def operate(kind: str, release: str) -> dict[str, Any]:
                async with http.post(f"{released.host.base_url}/api/releases/{release}/{kind}",
                                     headers=ANN, json={"environment": "prod",
                                                        "reason": "checking"}) as answer:
                    started = await answer.json()
                    assert answer.status == 202, started
                return await released.finished(started["id"], seconds=60)

            rolled_back = await operate("rollback", second)
            assert outcome(rolled_back) == "Completed", rolled_back
            assert stack.image("prod") == stack.image_in("prod", v1)
            assert stack.history("prod") == [(1, "superseded", "1.0.0"),
                                             (2, "superseded", "2.0.0"),
                                             (3, "deployed", "1.0.0")]
            prod = stack.ledger.environment_state(SERVICE, "prod")
            assert prod.current is not None and prod.current.release_id == first
            assert prod.current.chart is not None and prod.current.revision == 3
            assert (prod.current.chart.name, prod.current.chart.version) == (SERVICE, "1.0.0")
            assert stack.ledger.get_release(second, service=SERVICE).stages[
                "prod"].state == "RolledBack"

            redeployed = await operate("redeploy", second)
            assert outcome(redeployed) == "Completed", redeployed
            assert stack.image("prod") == stack.image_in("prod", v2)
            assert stack.history("prod")[-1] == (4, "deployed", "2.0.0")
            prod = stack.ledger.environment_state(SERVICE, "prod")
            assert prod.current is not None and prod.current.release_id == second

    stack.serve(scenario)


def test_a_paused_helm_failure_is_rolled_back_by_a_person(helm_stack: HelmStack) -> None:
    stack = helm_stack
    stack.helm_policy(prod_extra="        rollback: {pauseForHuman: true, pauseDeadline: 2h}\n")
    stack.push_chart("1.0.0")
    v1 = stack.push("v1.0.0")
    stack.push_chart("2.0.0")
    v2 = stack.push("v2.0.0")
    stack.kube.set_image_behaviour(f"prod/{stack.repository}@{v2}", "crash")

    async def scenario(released: Released) -> None:
        first = await released.completed("v1.0.0", v1)
        second = released.start("v2.0.0", v2)
        await released.at_gate(second, seconds=60)
        released.approve(second)
        status = await released.until(second, lambda s: ((s.get("customStatus") or {}).get(
            "waitingFor") or {}).get("kind") == "failure", seconds=60)
        assert "CrashLoopBackOff" in status["customStatus"]["waitingFor"]["failure"]
        # Helm returned before the release paused: its history says how the upgrade ended.
        assert stack.history("prod") == [(1, "deployed", "1.0.0"), (2, "failed", "2.0.0")]
        released.raise_event(second, status["customStatus"]["waitingFor"]["event"],
                             {"decision": "rollback", "by": "oncall@example.com",
                              "reason": "bad build"})
        done = await released.finished(second, seconds=60)
        assert outcome(done) == "RolledBack", done
        assert stack.history("prod") == [(1, "superseded", "1.0.0"), (2, "failed", "2.0.0"),
                                         (3, "deployed", "1.0.0")]
        assert stack.image("prod") == stack.image_in("prod", v1)
        assert stack.ledger.environment_state(SERVICE, "prod").last_good.release_id == first

    stack.serve(scenario)


def test_a_chart_that_does_not_render_fails_the_release_before_the_cluster(
        helm_stack: HelmStack) -> None:
    stack = helm_stack
    stack.helm_policy(values="{tests: null}")  # the test hook's template needs tests.image
    stack.push_chart("1.0.0")
    v1 = stack.push("v1.0.0")

    async def scenario(released: Released) -> None:
        release = released.start("v1.0.0", v1)
        done = await released.finished(release, seconds=60)
        assert outcome(done) == "Failed", done
        reason = done["output"]["reason"]
        assert reason.startswith("nothing deployed: ") and "chart delivery 1.0.0 does not" \
            " render with the release's values: delivery/templates/tests/test-health.yaml" \
            in reason, reason
        assert "ROLLBACK" not in reason
        assert stack.history("qa") == []
        assert not [r for r in stack.kube.requests() if r[0] not in ("GET",)]

    stack.serve(scenario)


def test_an_analysis_after_a_helm_upgrade_rolls_the_chart_back(helm_stack: HelmStack) -> None:
    """Analysis applies to every target kind: a failing measurement after `helm upgrade`
    ends in `helm rollback` to the last good revision."""
    stack = helm_stack
    answers = {"status": 200}
    server = stack.check_server(lambda headers: (answers["status"], {"status": "ok"}))
    stack.helm_policy(prod_extra=(
        "        analysis:\n"
        "          interval: 30s\n"
        "          measurements: 2\n"
        "          metrics:\n"
        "            - name: health\n"
        f"              http: {{url: \"{server.url}\", requests: 2}}\n"
        "              threshold: {min: 1}\n"))
    stack.push_chart("1.0.0")
    v1 = stack.push("v1.0.0")
    stack.push_chart("2.0.0")
    v2 = stack.push("v2.0.0")

    async def scenario(released: Released) -> None:
        await released.completed("v1.0.0", v1)
        answers["status"] = 503
        release = released.start("v2.0.0", v2)
        await released.at_gate(release, seconds=60)
        released.approve(release)
        done = await released.finished(release, seconds=60)
        assert outcome(done) == "RolledBack", done
        assert done["output"]["reason"].startswith("analysis failed: analysis 1/2: health: 0")
        assert stack.history("prod") == [(1, "superseded", "1.0.0"), (2, "superseded", "2.0.0"),
                                         (3, "deployed", "1.0.0")]
        assert stack.image("prod") == stack.image_in("prod", v1)

    stack.serve(scenario)
