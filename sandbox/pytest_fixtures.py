"""pytest fixtures for the local stack: throwaway TLS, one registry, a fault proxy and one
Prometheus per session.

`tests/conftest.py` loads them for every test folder with
`pytest_plugins = ["sandbox.pytest_fixtures"]` (one registry for the whole run). pytest refuses
`pytest_plugins` in a nested conftest; a test tree without that top-level line can import the
fixtures in its own conftest instead (one more registry per such conftest):

    from sandbox.pytest_fixtures import *  # noqa: F403

The registry and proxy are shared by every test in the session: use distinct repository names.
If docker-registry or prometheus is not installed the fixtures fail (never skip) saying what
to install. Prometheus starts only for a test that asks for `prometheus`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.faults import FaultProxy
from sandbox.prometheus import LocalPrometheus
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles, make_throwaway_cert

__all__ = ["tls_files", "registry", "fault_proxy_server", "fault_proxy", "prometheus"]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed cert for 127.0.0.1/localhost that is its own CA."""
    return make_throwaway_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def registry(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[LocalRegistry]:
    """A running docker-registry over TLS on a free port, for the whole session."""
    with LocalRegistry(tmp_path_factory.mktemp("registry"), tls_files) as running:
        yield running


@pytest.fixture(scope="session")
def fault_proxy_server(registry: LocalRegistry, tls_files: TlsFiles) -> Iterator[FaultProxy]:
    """The session's FaultProxy in front of `registry`, not reset between tests."""
    with FaultProxy(registry.endpoint, tls_files) as proxy:
        yield proxy


@pytest.fixture
def fault_proxy(fault_proxy_server: FaultProxy) -> Iterator[FaultProxy]:
    """The session's FaultProxy with no pending faults, mounts allowed and zeroed statistics."""
    fault_proxy_server.reset()
    yield fault_proxy_server
    fault_proxy_server.reset()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """A running Prometheus scraping every 1 s what its targets file lists, for the session.

    Shared: add your targets with `prometheus.add_targets([...])` under a `job` label of your
    own, once per module (a new target takes 4-10 s to be scraped), and never remove others'.
    """
    with LocalPrometheus(tmp_path_factory.mktemp("prometheus")) as running:
        yield running
