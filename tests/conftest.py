"""Shared fixtures for the app's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# One local registry (with its TLS files and fault proxy) and one Azurite for the whole run.
# Browser tests get `browser` / `browser_page` (headless Chromium via Playwright); any test
# `kube` (a Kubernetes API simulator) and `dashboard_app` (the app in a devhost subprocess).
pytest_plugins = ["sandbox.pytest_fixtures", "sandbox.azurite_fixtures",
                  "sandbox.browser_fixtures", "sandbox.kube.pytest_fixtures",
                  "tests.dashboard.dashboard_fixtures"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh devhost data directory for one test."""
    path = tmp_path / "devhost-data"
    path.mkdir()
    return path
