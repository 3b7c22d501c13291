"""The ingestion tests' stack: a ledger, a registry namespace and the policy over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_stack import Env, make_env

from sandbox.azurite import Azurite
from sandbox.faults import FaultProxy
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles


@pytest.fixture
def stack_env(tmp_path: Path, azurite: Azurite, registry: LocalRegistry, tls_files: TlsFiles,
              fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> Env:
    """This test's ledger tables, repositories and policy, with the app settings set."""
    return make_env(tmp_path, azurite, registry, tls_files, fault_proxy, monkeypatch)
