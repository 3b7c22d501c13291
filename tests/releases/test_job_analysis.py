"""Releases whose production is verified by an acceptance test run as a Kubernetes Job, end to
end through devhost and the simulator: a Job that succeeds lets the release through, one whose
image fails rolls production back with the Job's reason and log as evidence."""

from __future__ import annotations

from typing import Any

from release_rig import Released, ReleaseStack, outcome

from sandbox.policy_text import SERVICE
from shared.ledger.evidence import EvidenceBook

TESTS_IMAGE = "sandbox.example/delivery-tests"


def http_analysis(url: str) -> str:
    """QA's `analysis` (8-space indent): one http metric, no Job."""
    return ("        analysis:\n"
            "          interval: 30s\n"
            "          measurements: 1\n"
            "          metrics:\n"
            "            - name: health\n"
            f"              http: {{url: \"{url}\"}}\n"
            "              threshold: {min: 1}\n")


def job_analysis() -> str:
    """Production's `analysis` (8-space indent): one acceptance Job per release, its image
    tagged with the version under test."""
    return ("        analysis:\n"
            "          interval: 30s\n"
            "          measurements: 1\n"
            "          metrics:\n"
            "            - name: acceptance\n"
            f"              job: {{image: \"{TESTS_IMAGE}:${{version}}\","
            " args: [\"--service\", \"${service}\"], timeout: 20s}\n")


def measure_requests(released: Released, instance: str) -> list[dict[str, Any]]:
    """The inputs of an instance's `measure_analysis` calls (devhost shows them parsed)."""
    return [e["Input"] for e in released.history(instance)
            if e["EventType"] == "TaskScheduled" and e["Name"] == "measure_analysis"]


def acceptance_jobs(stack: ReleaseStack) -> list[dict[str, Any]]:
    return [job for job in stack.kube.objects("jobs", "prod")
            if job["metadata"]["labels"].get("release-workflow.io/analysis-metric")
            == "acceptance"]


def test_an_acceptance_job_that_succeeds_lets_the_release_through(stack: ReleaseStack) -> None:
    server = stack.check_server(lambda headers: (200, {"status": "ok"}))
    stack.policy(checks=[], qa_extra=http_analysis(server.url), prod_extra=job_analysis())
    good = stack.push("v1.0.0")

    async def scenario(released: Released) -> None:
        release, done = await released.through_gate("v1.0.0", good, seconds=60)
        assert outcome(done) == "Completed", done
        [job] = acceptance_jobs(stack)
        name = job["metadata"]["name"]
        assert name.startswith("delivery-analysis-")
        assert job["metadata"]["labels"]["release-workflow.io/release-id"] == release
        assert job["metadata"]["labels"]["release-workflow.io/environment"] == "prod"
        [container] = job["spec"]["template"]["spec"]["containers"]
        assert (container["image"], container["args"]) == (
            f"{TESTS_IMAGE}:v1.0.0", ["--service", SERVICE])
        assert done["customStatus"]["evidence"]["prod"] == (
            f"analysis passed (1 measurements): acceptance: 1 (within 1 ≤ x): job {name}"
            " succeeded")
        rounds = EvidenceBook.beside(stack.ledger).rounds(release)
        assert [(r.environment, r.round, r.evidence.verdict.value) for r in rounds] == [
            ("qa", 1, "passed"), ("prod", 1, "passed")]
        # Only an analysis with a job metric names where its Jobs run (others replay as before).
        [qa] = measure_requests(released, f"{release}:qa")
        assert sorted(qa) == ["analysis", "record", "round", "secrets", "variables"]
        [prod] = measure_requests(released, f"{release}:prod")
        assert (prod["target"]["namespace"], prod["connection"]) == (
            "prod", stack.service.environments[-1].cluster)

    stack.serve(scenario)


def test_an_acceptance_job_whose_image_fails_rolls_production_back(stack: ReleaseStack) -> None:
    stack.policy(checks=[], prod_extra=job_analysis())
    good, bad = stack.push("v1.0.0"), stack.push("v2.0.0")
    stack.kube.set_image_behaviour("delivery-tests:v2.0.0", "test-fail")

    async def scenario(released: Released) -> None:
        await released.completed("v1.0.0", good)
        release, done = await released.through_gate("v2.0.0", bad, seconds=60)
        assert outcome(done) == "RolledBack", done
        failed = next(job for job in acceptance_jobs(stack)
                      if job["metadata"]["labels"]["release-workflow.io/release-id"] == release)
        assert failed["status"]["failed"] == 1
        reason = done["output"]["reason"]
        assert reason.startswith(
            "analysis failed: analysis 1/1: acceptance: 0 (outside 1 ≤ x): job"
            f" {failed['metadata']['name']} failed: BackoffLimitExceeded; log: ")
        assert reason.endswith("GET /healthz: expected 200, got 503 | test failed")
        assert stack.image("prod") == stack.image_in("prod", good)
        assert stack.ledger.environment_state(SERVICE, "prod").current.digest == good

    stack.serve(scenario)
