"""host.json and local.settings.json: parsing, and Values reaching os.environ."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from devhost.settings import (
    HostSettings,
    SettingsError,
    apply_values,
    load_host_settings,
    load_local_values,
)


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_host_json_defaults_when_missing_or_empty(tmp_path: Path) -> None:
    assert load_host_settings(tmp_path) == HostSettings("api", "TestHubName", 10, 10)
    write(tmp_path / "host.json", {"version": "2.0"})
    assert load_host_settings(tmp_path) == HostSettings("api", "TestHubName", 10, 10)


def test_host_json_values(tmp_path: Path) -> None:
    write(tmp_path / "host.json", {"version": "2.0", "extensions": {
        "http": {"routePrefix": "/v2/"},
        "durableTask": {"hubName": "ReleaseHub", "maxConcurrentActivityFunctions": 4,
                        "maxConcurrentOrchestratorFunctions": 2}}})
    assert load_host_settings(tmp_path) == HostSettings("v2", "ReleaseHub", 4, 2)


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "invalid JSON"),
    ([1], "JSON object"),
    ({"extensions": {"durableTask": {"maxConcurrentActivityFunctions": 0}}},
     "maxConcurrentActivityFunctions must be a positive integer"),
    ({"extensions": {"durableTask": {"hubName": 5}}}, "hubName"),
    ({"extensions": {"http": {"routePrefix": 1}}}, "routePrefix"),
    ({"extensions": {"http": []}}, "extensions.http must be an object"),
])
def test_bad_host_json(tmp_path: Path, content: object, reason: str) -> None:
    write(tmp_path / "host.json", content)
    with pytest.raises(SettingsError, match=reason):
        load_host_settings(tmp_path)


def test_local_values_are_strings_and_do_not_override(tmp_path: Path) -> None:
    write(tmp_path / "local.settings.json", {"IsEncrypted": False, "Values": {
        "A": "file", "B": "file", "N": 3, "FLAG": True, "NONE": None}})
    values = load_local_values(tmp_path)
    assert values == {"A": "file", "B": "file", "N": "3", "FLAG": "true"}
    env = {"B": "environment"}
    assert apply_values(values, env) == ["A", "N", "FLAG"]
    assert env == {"A": "file", "B": "environment", "N": "3", "FLAG": "true"}


def test_encrypted_local_settings_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "local.settings.json", {"IsEncrypted": True, "Values": {}})
    with pytest.raises(SettingsError, match="encrypted"):
        load_local_values(tmp_path)


def test_values_reach_the_app_without_overriding_and_are_removed_on_stop(
        serve, apps, tmp_path, monkeypatch) -> None:
    app_dir = tmp_path / "settings_app"
    shutil.copytree(apps / "settings_app", app_dir)
    write(app_dir / "local.settings.json", {"IsEncrypted": False, "Values": {
        "DEVHOST_TEST_FROM_FILE": "from-file", "DEVHOST_TEST_PRESET": "from-file",
        "DEVHOST_TEST_NUMBER": 42}})
    monkeypatch.setenv("DEVHOST_TEST_PRESET", "from-environment")
    monkeypatch.delenv("DEVHOST_TEST_FROM_FILE", raising=False)
    monkeypatch.delenv("DEVHOST_TEST_NUMBER", raising=False)

    async def scenario(host, session):
        async with session.get("/api/env") as response:
            return await response.json()

    seen = serve(app_dir, scenario)
    assert seen == {"DEVHOST_TEST_FROM_FILE": "from-file",
                    "DEVHOST_TEST_PRESET": "from-environment",
                    "DEVHOST_TEST_NUMBER": "42", "at_import": "from-file"}
    assert "DEVHOST_TEST_FROM_FILE" not in os.environ
    assert os.environ["DEVHOST_TEST_PRESET"] == "from-environment"
