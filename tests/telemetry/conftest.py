"""The telemetry tests' fixtures: the SDK's in-memory exporters installed in this process
(where in-process devhost runs the orchestrators and activities), and a release stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.azurite import Azurite
from sandbox.kube.pytest_fixtures import *  # noqa: F403 (the kube fixture)
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.telemetry.pipelines import InMemory
from shared.telemetry.setup import install_in_memory, uninstall
from tests.releases.release_rig import ReleaseStack


@pytest.fixture
def exported() -> Iterator[InMemory]:
    """Everything the app records during the test, kept in memory."""
    memory = install_in_memory()
    try:
        yield memory
    finally:
        uninstall()


@pytest.fixture
def stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry, azurite: Azurite,
          kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> ReleaseStack:
    """One service on its own repository, ledger tables, clusters, secrets and policy."""
    return ReleaseStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)
