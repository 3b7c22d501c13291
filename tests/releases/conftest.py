"""The releases tests' `stack`: a ReleaseStack (release_rig.py) built afresh for each test."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_rig import ReleaseStack

from sandbox.azurite import Azurite
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles


@pytest.fixture
def stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry, azurite: Azurite,
          kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> ReleaseStack:
    """One service on its own repository, ledger tables, clusters, secrets and policy."""
    return ReleaseStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)
