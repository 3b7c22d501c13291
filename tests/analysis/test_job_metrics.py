"""`job` metrics against the Kubernetes simulator through the real `kubernetes` client: a Job
made from the template, 1 when it succeeds, 0 with the Job's reason and its pod's last log
lines when it fails, no number when it does not finish in time, one Job per measurement even
when the activity is retried, and a clear fatal reading when the identity may not make Jobs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.kube.pytest_fixtures import ADMIN_TOKEN, QA_TOKEN, api_client
from sandbox.kube.server import KubeSimulator
from shared.analysis.jobs import JobRun, JobSite, Outcome, measure_job
from shared.cluster.requests import ClusterRequest
from shared.deploy.evidence import Evidence, Verdict
from shared.policy.analysis import JobProvider
from tests.apphost import run_activities

VARIABLES = {"service": "delivery", "environment": "qa", "version": "v1.4.2",
             "digest": "sha256:" + "ab" * 32, "stable": "delivery", "canary": "delivery",
             "windowStart": "2026-12-06T16:30:00Z"}
SECRETS = {"local": {"environment": "jobs"}}


def site(namespace: str = "qa", release: str = "delivery-0123456789abcdef",
         round_: int = 1) -> JobSite:
    target = {"cluster": "jobs-cluster", "namespace": namespace, "deployment": "delivery",
              "container": "app"}
    connection = {"name": "jobs-cluster", "kubeconfigSecret": "kubeconfig"}
    request = {"target": target, "connection": connection, "secrets": SECRETS,
               "round": round_, "record": {"releaseId": release}}
    return JobSite.from_request(request, "qa")


def acceptance_job(image: str = "reg/delivery-tests:1", seconds: int = 30,
              backoff_limit: int = 0) -> JobProvider:
    return JobProvider(image=image, command=("/run-tests",),
                       args=("--version", "${version}", "--service", "${service}"),
                       backoff_limit=backoff_limit, timeout=timedelta(seconds=seconds))


def run(sim: KubeSimulator, provider: JobProvider, where: JobSite | None = None,
        **options: Any) -> Outcome:
    options.setdefault("poll_seconds", 0.05)
    with api_client(sim) as api:
        return JobRun(api, where or site(), **options).measure(provider, "acceptance",
                                                                 VARIABLES)


def test_a_job_that_succeeds_reads_1(kube: KubeSimulator) -> None:
    got = run(kube, acceptance_job())
    name = site().job_name("acceptance")
    assert got == Outcome(1.0, f"job {name} succeeded")
    assert name.startswith("delivery-analysis-") and len(name) == len("delivery-analysis-") + 10
    [job] = kube.objects("jobs", "qa")
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"],
            spec["ttlSecondsAfterFinished"]) == (0, 30, 3600)
    [container] = spec["template"]["spec"]["containers"]
    assert (container["image"], container["command"], container["args"]) == (
        "reg/delivery-tests:1", ["/run-tests"], ["--version", "v1.4.2", "--service", "delivery"])
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    labels = job["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/managed-by": "release-workflow",
                      "release-workflow.io/analysis-metric": "acceptance",
                      "release-workflow.io/release-id": "delivery-0123456789abcdef",
                      "release-workflow.io/environment": "qa",
                      "release-workflow.io/round": "1"}
    [pod] = kube.objects("pods", "qa")
    assert pod["metadata"]["labels"]["release-workflow.io/round"] == "1"


def test_names_differ_by_release_round_and_metric_and_fit_a_label() -> None:
    first = site().job_name("acceptance")
    assert first == site().job_name("acceptance")
    assert len({first, site(round_=2).job_name("acceptance"), site().job_name("smoke"),
                site(release="other-0123456789abcdef").job_name("acceptance")}) == 4
    long = JobSite(site().cluster, "r", "qa", 1)
    target = {**long.cluster.target, "deployment": "a." + "x" * 80}
    named = JobSite(ClusterRequest.from_dict({**long.cluster.body, "target": target}),
                    "r", "qa", 1).job_name("m")
    assert len(named) == 63 and named.startswith("a-xxx") and "-analysis-" in named


def test_a_failing_job_reads_0_with_its_reason_and_log(kube: KubeSimulator) -> None:
    kube.set_image_behaviour("delivery-tests:bad", "test-fail")
    got = run(kube, acceptance_job("reg/delivery-tests:bad"))
    assert got.value == 0.0 and not got.fatal
    [pod] = kube.objects("pods", "qa")
    assert got.why == (f"job {site().job_name('acceptance')} failed: BackoffLimitExceeded;"
                       f" log: {pod['metadata']['name']}: checking the release"
                       " | GET /healthz: expected 200, got 503 | test failed")


def test_a_job_that_does_not_finish_in_time_is_no_data_and_is_removed(
        kube: KubeSimulator) -> None:
    kube.set_image_behaviour("delivery-tests:hang", "never-ready")  # the frozen clock: no deadline
    got = run(kube, acceptance_job("reg/delivery-tests:hang", seconds=1), grace_seconds=0.2)
    name = site().job_name("acceptance")
    assert got == Outcome(None, f"job {name} did not finish within 1 s")
    assert kube.objects("jobs", "qa") == [] and kube.objects("pods", "qa") == []


def test_a_job_past_its_deadline_reads_0_deadline_exceeded(
        kube_factory: Callable[..., KubeSimulator]) -> None:
    sim = kube_factory(clock=time.time)
    sim.set_image_behaviour("delivery-tests:hang", "never-ready")
    got = run(sim, acceptance_job("reg/delivery-tests:hang", seconds=1), grace_seconds=3)
    assert got.value == 0.0
    assert got.why == f"job {site().job_name('acceptance')} failed: DeadlineExceeded"


def test_a_retried_measurement_follows_the_first_attempts_job(
        kube_factory: Callable[..., KubeSimulator]) -> None:
    sim = kube_factory(job_seconds=20)

    def worker_lost(seconds: float) -> None:
        raise RuntimeError("the worker went away")

    with pytest.raises(RuntimeError):
        run(sim, acceptance_job(), sleep=worker_lost)
    sim.advance(20)
    sim.reset_requests()
    got = run(sim, acceptance_job())
    assert got.value == 1.0
    assert len(sim.objects("jobs", "qa")) == 1 and len(sim.objects("pods", "qa")) == 1
    assert ("POST", "/apis/batch/v1/namespaces/qa/jobs") in sim.requests()  # answered 409


def test_an_identity_that_may_not_make_jobs_is_fatal(kube: KubeSimulator,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS__JOBS__KUBECONFIG", kube.kubeconfig(QA_TOKEN))
    got = measure_job(acceptance_job(), "acceptance", VARIABLES, site(namespace="prod"))
    assert got.value is None and got.fatal and not got.unreachable
    assert got.why.startswith("cluster jobs-cluster, namespace prod: forbidden (403): "
                              'jobs.batch is forbidden: User "sandbox:token:')
    assert got.why.endswith("the app's identity needs create, get and delete on jobs, list on"
                            " pods and get on pods/log in the namespace")
    assert QA_TOKEN not in got.why
    assert kube.objects("jobs") == []


def test_an_unreachable_cluster_is_worth_another_try(
        kube_factory: Callable[..., KubeSimulator], monkeypatch: pytest.MonkeyPatch) -> None:
    sim = kube_factory()
    monkeypatch.setenv("SECRETS__JOBS__KUBECONFIG", sim.kubeconfig(ADMIN_TOKEN))
    sim.stop()
    got = measure_job(acceptance_job(), "acceptance", VARIABLES, site())
    assert got.value is None and got.unreachable and not got.fatal
    assert got.why.startswith("cluster jobs-cluster, namespace qa: cannot reach the API server")


def analysis(image: str) -> dict[str, Any]:
    """One `job` metric as a policy snapshot writes it."""
    return {"intervalSeconds": 60, "measurements": 1, "durationSeconds": None,
            "failureLimit": 0, "onNoData": "fail", "retries": 0,
            "metrics": [{"name": "acceptance", "threshold": {"min": 1.0, "max": None},
                         "provider": {"kind": "job", "image": image, "command": [],
                                      "args": ["${version}"], "backoffLimit": 0,
                                      "timeoutSeconds": 30}}]}


def test_measure_analysis_runs_job_metrics_where_the_request_says(
        tmp_path: Path, kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS__JOBS__KUBECONFIG", kube.kubeconfig(ADMIN_TOKEN))
    kube.set_image_behaviour("delivery-tests:bad", "crash")
    where = {"target": site().cluster.target, "connection": site().cluster.connection,
             "secrets": SECRETS, "round": 2, "record": None}
    passed, failed, nowhere, bad = run_activities(
        tmp_path / "devhost",
        ("measure_analysis", {"analysis": analysis("reg/delivery-tests:1"),
                              "variables": VARIABLES, **where}),
        ("measure_analysis", {"analysis": analysis("reg/delivery-tests:bad"),
                              "variables": VARIABLES, **where, "round": 3}),
        ("measure_analysis", {"analysis": analysis("reg/delivery-tests:1"),
                              "variables": VARIABLES, "secrets": SECRETS}),
        ("measure_analysis", {"analysis": analysis("reg/delivery-tests:1"),
                              "variables": VARIABLES, **where,
                              "connection": {"name": "elsewhere", "kubeconfigSecret": "k"}}))
    good = Evidence.from_dict(passed).measurements[0]
    assert (good.verdict, good.value) == (Verdict.PASSED, 1.0)
    assert good.summary.startswith("1 (within 1 ≤ x): job delivery-analysis-")
    wrong = Evidence.from_dict(failed).measurements[0]
    assert (wrong.verdict, wrong.value) == (Verdict.FAILED, 0.0)
    assert "BackoffLimitExceeded" in wrong.summary and "test failed" in wrong.summary
    missing = Evidence.from_dict(nowhere).measurements[0]
    assert missing.verdict is Verdict.FAILED and missing.details["fatal"] is True
    assert missing.summary == "job metrics need the target's cluster: the request names none"
    assert isinstance(bad, Exception) and "[permanent]" in str(bad)
    assert "connection must be an object whose name is target.cluster" in str(bad)
    assert [j["spec"]["template"]["spec"]["containers"][0]["args"]
            for j in kube.objects("jobs", "qa")] == [["v1.4.2"], ["v1.4.2"]]
