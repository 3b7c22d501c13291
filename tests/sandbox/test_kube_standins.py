"""Stand-in services behind the simulator's ready pods and Services: real HTTP on loopback from
one child process, behaving as the image was built (errors, latency), reached through the
Service's selector; ports follow readiness and scale, and go away with the simulator."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from sandbox.kube import ApiError, KubeSimulator
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import api_client
from sandbox.kube.standins import STANDIN_ANNOTATION, StandinError, file_sd_targets
from tests.sandbox.test_kube_helm import DIGEST_1, DIGEST_2, upgrade_install, write_chart

WAIT_SECONDS = 20.0


@pytest.fixture
def sim(kube_factory: Callable[..., KubeSimulator]) -> KubeSimulator:
    return kube_factory(standins=True)


@pytest.fixture
def sim_api(sim: KubeSimulator) -> Iterator[client.ApiClient]:
    """The `kubernetes` client for `sim` (all namespaces)."""
    with api_client(sim) as api:
        yield api


def get(url: str) -> tuple[int, str, dict[str, str]]:
    """(status, body, headers) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.URLError as error:
        return isinstance(error.reason, ConnectionRefusedError)
    return False


def metric(text: str, name: str) -> float:
    """The value of one sample line of Prometheus text (`name` with its labels)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in\n{text}"
    return float(found.group(1))


def deployment(name: str, image: str, labels: dict[str, str], replicas: int
               ) -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=image)]),
            ),
        ),
    )


def service(name: str, selector: dict[str, str]) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(selector=selector, ports=[client.V1ServicePort(port=80)]),
    )


def answered_by(url: str, count: int) -> Counter[tuple[str, int]]:
    """(pod, status) of `count` requests through a Service's proxy."""
    seen: Counter[tuple[str, int]] = Counter()
    for _ in range(count):
        status, _, headers = get(url + "/")
        seen[(headers.get("X-Pod", ""), status)] += 1
    return seen


def test_a_deployments_ready_pods_answer(sim: KubeSimulator) -> None:
    sim.create_deployment("qa", "web", "reg.example/web:1.4.1", replicas=3)
    standins = sim.standins()
    pods = {pod["metadata"]["name"]: pod for pod in sim.objects("pods", "qa")}
    assert sorted(s.pod for s in standins) == sorted(pods) and len(pods) == 3
    urls = {s.url for s in standins}
    assert len(urls) == 3 and all(url.startswith("http://127.0.0.1:") for url in urls)
    with api_client(sim) as api:
        listed = client.CoreV1Api(api).list_namespaced_pod("qa", label_selector="app=web")
    for pod in listed.items:  # the address is on the pod, where Prometheus' discovery reads it
        standin = next(s for s in standins if s.pod == pod.metadata.name)
        assert pod.metadata.annotations[STANDIN_ANNOTATION] == standin.url
        assert pod.status.pod_ip.startswith("10.244.")  # the pod's own IP stays as it was
        assert standin.namespace == "qa" and standin.labels["app"] == "web"
        assert get(standin.url + "/healthz")[:2] == (200, "ok\n")
        status, body, _ = get(standin.url + "/version")
        version = json.loads(body)
        assert status == 200 and version["pod"] == pod.metadata.name
        assert version["image"] == "reg.example/web:1.4.1" and version["tag"] == "1.4.1"
        assert version["digest"] == pod.status.container_statuses[0].image_id.split("@")[1]
    targets = file_sd_targets(standins)  # what Prometheus' file discovery reads
    assert sorted(t["targets"][0] for t in targets) == sorted(
        url.removeprefix("http://") for url in urls)
    assert {(t["labels"]["namespace"], t["labels"]["pod"], t["labels"]["app"],
             "pod_template_hash" in t["labels"]) for t in targets} == {
        ("qa", name, "web", True) for name in pods}


def test_metrics_count_requests_by_code_and_latency(sim: KubeSimulator) -> None:
    sim.set_image_behaviour("web:2.0", "ok", errors=0.25, latency_ms=40)
    sim.create_deployment("qa", "web", "reg.example/web:2.0", replicas=1)
    [standin] = sim.standins()
    codes = Counter(get(f"{standin.url}/orders/{n}")[0] for n in range(8))
    assert codes == {200: 6, 500: 2}
    get(standin.url + "/healthz")  # probes and scrapes are not the app's traffic
    status, text, headers = get(standin.url + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert metric(text, 'http_requests_total{code="200"}') == 6
    assert metric(text, 'http_requests_total{code="500"}') == 2
    assert "# TYPE http_request_duration_seconds histogram" in text
    assert metric(text, 'http_request_duration_seconds_bucket{le="0.025"}') == 0  # each >= 40 ms
    assert metric(text, 'http_request_duration_seconds_bucket{le="+Inf"}') == 8
    assert metric(text, "http_request_duration_seconds_count") == 8
    assert metric(text, "http_request_duration_seconds_sum") >= 8 * 0.04
    assert f'pod="{standin.pod}"' in text and 'image="reg.example/web:2.0"' in text
    sim.set_image_behaviour("web:2.0", "ok")  # a new rule applies to the running stand-in
    assert sim.standins() == [standin]
    assert Counter(get(standin.url + "/")[0] for _ in range(4)) == {200: 4}
    text = get(standin.url + "/metrics")[1]
    assert metric(text, 'http_requests_total{code="200"}') == 10
    assert metric(text, 'http_requests_total{code="500"}') == 2


def test_an_image_built_with_errors_answers_half_500_through_the_service(
    sim: KubeSimulator, sim_api: client.ApiClient
) -> None:
    sim.set_image_behaviour("web:2.0", "ok", errors=0.5)
    sim.create_deployment("qa", "web", "reg.example/web:1.0", replicas=2)
    client.CoreV1Api(sim_api).create_namespaced_service("qa", service("web", {"app": "web"}))
    url = sim.service_url("qa", "web")
    before = answered_by(url, 20)
    assert sum(n for (_, code), n in before.items() if code == 500) == 0
    assert len({pod for pod, _ in before}) == 2  # round robin over both pods
    client.AppsV1Api(sim_api).patch_namespaced_deployment("web", "qa", {"spec": {"template": {
        "spec": {"containers": [{"name": "app", "image": "reg.example/web:2.0"}]}}}})
    assert sim.service_url("qa", "web") == url  # the Service's address stays
    after = answered_by(url, 40)
    new_pods = {s.pod for s in sim.standins()}
    assert {pod for pod, _ in after} == new_pods and not new_pods & {pod for pod, _ in before}
    assert sum(n for (_, code), n in after.items() if code == 500) == 20


def test_a_selector_switch_moves_traffic_and_replicas_split_it(
    sim: KubeSimulator, sim_api: client.ApiClient
) -> None:
    apps, core = client.AppsV1Api(sim_api), client.CoreV1Api(sim_api)
    apps.create_namespaced_deployment(
        "prod", deployment("web-blue", "reg.example/web:1.0", {"app": "web", "slot": "blue"}, 3))
    apps.create_namespaced_deployment(
        "prod", deployment("web-green", "reg.example/web:2.0", {"app": "web", "slot": "green"}, 1))
    core.create_namespaced_service("prod", service("web", {"app": "web", "slot": "blue"}))
    core.create_namespaced_service("prod", service("web-all", {"app": "web"}))
    slot = {s.pod: s.labels["slot"] for s in sim.standins()}
    url = sim.service_url("prod", "web")
    assert Counter(slot[pod] for pod, _ in answered_by(url, 12).elements()) == {"blue": 12}
    core.patch_namespaced_service("web", "prod", {"spec": {"selector": {"slot": "green"}}})
    assert Counter(slot[pod] for pod, _ in answered_by(url, 12).elements()) == {"green": 12}
    split = answered_by(sim.service_url("prod", "web-all"), 16)
    assert Counter(slot[pod] for pod, _ in split.elements()) == {"blue": 12, "green": 4}


def test_scale_down_and_unready_pods_lose_their_ports(
    sim: KubeSimulator, sim_api: client.ApiClient
) -> None:
    sim.create_deployment("qa", "web", "reg.example/web:1.0", replicas=3)
    client.CoreV1Api(sim_api).create_namespaced_service("qa", service("web", {"app": "web"}))
    before = {s.pod: s.url for s in sim.standins()}
    client.AppsV1Api(sim_api).patch_namespaced_deployment("web", "qa", {"spec": {"replicas": 1}})
    after = {s.pod: s.url for s in sim.standins()}
    assert len(after) == 1 and after.items() <= before.items()
    for pod, url in before.items():
        if pod not in after:
            assert refused(url + "/healthz")
    [(kept, url)] = after.items()
    assert {pod for pod, _ in answered_by(sim.service_url("qa", "web"), 4)} == {kept}
    sim.set_image_behaviour("web:1.0", "never-ready")  # running, but no longer ready
    assert sim.standins() == [] and refused(url + "/healthz")
    pod = sim.get("pods", "qa", kept)
    assert STANDIN_ANNOTATION not in (pod["metadata"].get("annotations") or {})
    status, body, _ = get(sim.service_url("qa", "web") + "/")
    assert status == 503 and "service qa/web has no ready endpoints" in body


def test_generated_traffic_reaches_the_metrics(
    sim: KubeSimulator, sim_api: client.ApiClient
) -> None:
    sim.set_image_behaviour("web:3.0", "ok", errors=0.2)
    sim.create_deployment("qa", "web", "reg.example/web:3.0", replicas=2)
    client.CoreV1Api(sim_api).create_namespaced_service("qa", service("web", {"app": "web"}))
    sim.generate_traffic("qa", "web", 40)
    deadline = time.monotonic() + WAIT_SECONDS
    while sum(sim.traffic_sent("qa", "web").values()) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    sim.generate_traffic("qa", "web", 0)
    sent = sim.traffic_sent("qa", "web")
    total = 0.0
    for standin in sim.standins():
        text = get(standin.url + "/metrics")[1]
        served = metric(text, 'http_requests_total{code="200"}') + metric(
            text, 'http_requests_total{code="500"}')
        assert served > 0  # both pods got some
        total += served
    assert sum(sent.values()) >= 20 and set(sent) <= {"200", "500"}
    assert total == sum(sent.values())  # every generated request was served and counted
    assert sent["500"] == pytest.approx(0.2 * total, abs=2)
    time.sleep(0.3)
    assert sim.traffic_sent("qa", "web") == sent  # rate 0 stopped it


def test_bad_input_is_refused_and_changes_nothing(
    sim: KubeSimulator, kube_factory: Callable[..., KubeSimulator]
) -> None:
    sim.create_deployment("qa", "web", "reg.example/web:1.0", replicas=1)
    for errors, latency in [(1.5, 0), (-0.1, 0), (float("nan"), 0), (0, -1), (0, 1e9)]:
        with pytest.raises(ValueError, match="must be a number from 0 to"):
            sim.set_image_behaviour("web:1.0", "crash", errors=errors, latency_ms=latency)
    assert len(sim.standins()) == 1  # the crash rule was not taken either
    with pytest.raises(ApiError) as missing:
        sim.generate_traffic("qa", "nothing", 5)
    assert missing.value.code == 404
    with pytest.raises(ValueError, match="rps must be a number"):
        sim.generate_traffic("qa", "web", -1)
    with pytest.raises(StandinError, match="start the simulator with standins=True"):
        kube_factory().standins()


def test_stop_ends_the_child_process_and_every_port(
    kube_factory: Callable[..., KubeSimulator]
) -> None:
    sim = kube_factory(standins=True)
    sim.create_deployment("qa", "web", "reg.example/web:1.0", replicas=2)
    with api_client(sim) as api:
        client.CoreV1Api(api).create_namespaced_service("qa", service("web", {"app": "web"}))
    urls = [s.url for s in sim.standins()] + [sim.service_url("qa", "web")]
    pid = sim.standin_pid
    assert pid is not None and all(get(url + "/healthz")[0] == 200 for url in urls)
    sim.stop()
    assert sim.standin_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, and reaped: no zombie left behind
    assert all(refused(url + "/healthz") for url in urls)


def test_a_rolling_update_moves_traffic_pod_by_pod(
    kube_factory: Callable[..., KubeSimulator]
) -> None:
    sim = kube_factory(standins=True, rollout_seconds=40)
    sim.create_deployment("qa", "web", "reg.example/web:1.0", replicas=4)
    sim.advance(40)
    with api_client(sim) as api:
        client.CoreV1Api(api).create_namespaced_service("qa", service("web", {"app": "web"}))
        client.AppsV1Api(api).patch_namespaced_deployment("web", "qa", {"spec": {"template": {
            "spec": {"containers": [{"name": "app", "image": "reg.example/web:2.0"}]}}}})
    url = sim.service_url("qa", "web")

    def versions() -> Counter[str]:
        image = {s.pod: json.loads(get(s.url + "/version")[1])["tag"] for s in sim.standins()}
        return Counter(image[pod] for pod, _ in answered_by(url, 8).elements())

    assert versions() == {"1.0": 8}  # the new pods are not ready yet: they get nothing
    sim.advance(20)  # half of the new ReplicaSet is ready, the old one scaled down to match
    halfway = versions()
    assert set(halfway) == {"1.0", "2.0"} and sum(halfway.values()) == 8
    tags = Counter(json.loads(get(s.url + "/version")[1])["tag"] for s in sim.standins())
    assert tags == {"2.0": 2, "1.0": 1}  # 4 replicas, maxUnavailable 1: 2 new + 1 old ready
    sim.advance(20)
    assert versions() == {"2.0": 8}


def test_a_helm_release_is_served_and_an_upgrade_with_errors_shows(
    sim: KubeSimulator, tmp_path: Path
) -> None:
    chart = write_chart(tmp_path / "chart")
    upgrade_install(sim, chart, DIGEST_1)  # Helm's own wait watches the annotated pods
    url = sim.service_url("qa", "web")
    assert sum(answered_by(url, 8).values()) == 8
    digests = {json.loads(get(s.url + "/version")[1])["digest"] for s in sim.standins()}
    assert digests == {DIGEST_1}
    sim.set_image_behaviour(DIGEST_2, "ok", errors=0.5)
    upgrade_install(sim, chart, DIGEST_2)
    after = answered_by(url, 8)
    assert sum(n for (_, code), n in after.items() if code == 500) == 4
    assert {json.loads(get(s.url + "/version")[1])["digest"] for s in sim.standins()} == {
        DIGEST_2}
