"""Shared fixtures for the app's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.config_sources import parse_local_settings

REPO = Path(__file__).resolve().parent.parent
# The app does not start without its reconciler's schedule (%RECONCILE_SCHEDULE%): tests
# that do not choose one get the sample's, as a local.settings.json would give it.
os.environ.setdefault("RECONCILE_SCHEDULE", parse_local_settings(
    (REPO / "local.settings.sample.json").read_text("utf-8"))["RECONCILE_SCHEDULE"])

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
