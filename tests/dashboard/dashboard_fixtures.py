"""pytest fixtures for the app in a devhost subprocess on real parts (see dashboard_stack.py).

tests/conftest.py loads them (and the simulator's `kube`) for every folder, so the dashboard,
CLI and browser tests share one definition: `dashboard_app` serves the app on a fresh ledger
prefix and repository, `seeded_dashboard` the same with v1.0.0 in production and
v1.0.1 rolled back. Does not start a release: tests push their own (`waiting_release`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.azurite import Azurite
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from tests.dashboard.dashboard_stack import DashboardStack, dashboard_stack


@pytest.fixture
def dashboard_app(tmp_path: Path, registry: LocalRegistry, tls_files: TlsFiles,
                  azurite: Azurite, kube: KubeSimulator) -> Iterator[DashboardStack]:
    """The app served until the test ends; its ledger is empty."""
    with dashboard_stack(tmp_path, registry, tls_files, azurite, kube) as running:
        yield running


@pytest.fixture
def seeded_dashboard(dashboard_app: DashboardStack) -> DashboardStack:
    """`dashboard_app` whose ledger already holds two earlier releases (`seed_history`)."""
    dashboard_app.seed_history()
    return dashboard_app
