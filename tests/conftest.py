"""Shared fixtures for the app's tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh devhost data directory for one test."""
    path = tmp_path / "devhost-data"
    path.mkdir()
    return path
