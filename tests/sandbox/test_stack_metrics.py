"""The stack's stand-in follower (sandbox/stack_metrics.py) against a real simulator with
stand-ins: Prometheus's targets file follows the ready pods as they come and go, and traffic
starts through a Service once it exists. The stack with its Prometheus: test_stack_push.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from sandbox.kube import KubeSimulator
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.pytest_fixtures import api_client
from sandbox.stack_metrics import StandinFollower
from tests.sandbox.stack_helpers import wait_until
from tests.sandbox.test_kube_standins import service

WAIT_SECONDS = 20.0


@pytest.fixture
def sim(kube_factory: Callable[..., KubeSimulator]) -> KubeSimulator:
    return kube_factory(standins=True)


@pytest.fixture
def follower(sim: KubeSimulator, tmp_path: Path) -> Iterator[StandinFollower]:
    with StandinFollower(sim, tmp_path / "targets.json", services=[("qa", "web")],
                         rps=20) as running:
        yield running


def listed(path: Path) -> dict[str, dict[str, str]]:
    """Pod name → labels of each target group in a file_sd file, with its one target."""
    groups = json.loads(path.read_text())
    assert all(len(group["targets"]) == 1 for group in groups)
    return {group["labels"]["pod"]: group["labels"] | {"target": group["targets"][0]}
            for group in groups}


def test_the_targets_file_follows_the_ready_pods(sim: KubeSimulator,
                                                 follower: StandinFollower) -> None:
    assert json.loads(follower.targets_file.read_text()) == []  # written at start
    sim.create_deployment("qa", "web", "reg.example/web:1.0", replicas=2)
    targets = wait_until(lambda: len(found := listed(follower.targets_file)) == 2 and found,
                         WAIT_SECONDS, "two targets listed")
    standins = {s.pod: s.url for s in sim.standins()}
    assert {pod: f"http://{labels['target']}" for pod, labels in targets.items()} == standins
    assert {labels["namespace"] for labels in targets.values()} == {"qa"}
    assert all(labels["pod_template_hash"] for labels in targets.values())
    with api_client(sim) as api:
        client.AppsV1Api(api).patch_namespaced_deployment("web", "qa",
                                                          {"spec": {"replicas": 1}})
    left = wait_until(lambda: len(found := listed(follower.targets_file)) == 1 and found,
                      WAIT_SECONDS, "one target left")
    assert set(left) <= set(targets)


def test_traffic_starts_once_the_service_exists(sim: KubeSimulator,
                                                follower: StandinFollower) -> None:
    sim.create_deployment("qa", "web", "reg.example/web:1.0", replicas=2)
    follower.follow()  # no Service yet: nothing to send through, and no error
    assert follower.flowing == set()
    with api_client(sim) as api:
        client.CoreV1Api(api).create_namespaced_service("qa", service("web", {"app": "web"}))
    sent = wait_until(lambda: sim.traffic_sent("qa", "web").get("200", 0) >= 5 and
                      sim.traffic_sent("qa", "web"), WAIT_SECONDS, "traffic through qa/web")
    assert set(sent) == {"200"} and follower.flowing == {("qa", "web")}
