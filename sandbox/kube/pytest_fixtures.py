"""pytest fixtures for the Kubernetes simulator: TLS simulators per test and real clients for them.

tests/conftest.py loads them for every test; elsewhere load them with
`from sandbox.kube.pytest_fixtures import *  # noqa: F403`. They use the session `tls_files`
fixture that tests/conftest.py loads. Simulators start with a frozen clock (`START`, moved
only by `advance()`), rollouts and Jobs' pods that finish at once, and two tokens:
`ADMIN_TOKEN` for every namespace and `QA_TOKEN` for the `qa` namespace only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from sandbox.kube.server import KubeSimulator
from sandbox.tls import TlsFiles

__all__ = [
    "ADMIN_TOKEN", "QA_TOKEN", "START", "TOKENS", "api_client", "kube", "kube_api",
    "kube_factory",
]

ADMIN_TOKEN = "sandbox-admin-token"
QA_TOKEN = "sandbox-qa-token"
TOKENS: dict[str, set[str] | None] = {ADMIN_TOKEN: None, QA_TOKEN: {"qa"}}
START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def api_client(
    simulator: KubeSimulator, token: str | None = ADMIN_TOKEN, namespace: str | None = None
) -> client.ApiClient:
    """A `kubernetes` ApiClient loaded from the simulator's kubeconfig, as the product does."""
    kubeconfig = yaml.safe_load(simulator.kubeconfig(token, namespace))
    return config.new_client_from_config_dict(kubeconfig)


@pytest.fixture
def kube_factory(tls_files: TlsFiles) -> Iterator[Callable[..., KubeSimulator]]:
    """Start simulators with custom settings (TLS, `TOKENS`, the frozen clock and Jobs' pods
    done at once by default)."""
    started: list[KubeSimulator] = []

    def start(**settings: Any) -> KubeSimulator:
        settings.setdefault("tls", tls_files)
        settings.setdefault("tokens", TOKENS)
        settings.setdefault("clock", lambda: START)
        settings.setdefault("job_seconds", 0.0)
        simulator = KubeSimulator(**settings).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def kube(kube_factory: Callable[..., KubeSimulator]) -> KubeSimulator:
    """A running TLS simulator with the default tokens, frozen clock and instant rollouts."""
    return kube_factory()


@pytest.fixture
def kube_api(kube: KubeSimulator) -> Iterator[client.ApiClient]:
    """An ApiClient for `kube` with the all-namespaces token."""
    with api_client(kube) as api:
        yield api
