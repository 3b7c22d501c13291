"""Unit tests for shared.app_info: version and task hub name, edge cases written out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import app_info
from shared.app_info import (
    app_version,
    durable_hub_name,
    hub_name_from_host_json,
    is_valid_hub_name,
    version_from_pyproject,
)

REPO = Path(__file__).resolve().parent.parent


def host_json(hub_name: object) -> str:
    return json.dumps({"version": "2.0", "extensions": {"durableTask": {"hubName": hub_name}}})


class TestVersionFromPyproject:
    def test_reads_project_version(self) -> None:
        assert version_from_pyproject('[project]\nname = "x"\nversion = "1.4.2"\n') == "1.4.2"

    def test_strips_whitespace(self) -> None:
        assert version_from_pyproject('[project]\nversion = " 2.0.0 "\n') == "2.0.0"

    @pytest.mark.parametrize(
        "text",
        [
            "",  # empty file
            "[tool.ruff]\nline-length = 100\n",  # no [project] table
            '[project]\nname = "x"\n',  # no version
            '[project]\nversion = ""\n',  # empty version
            "[project]\nversion = 3\n",  # not a string
            'project = "flat"\n',  # project is not a table
            "[project\nversion = '1'\n",  # invalid TOML
        ],
    )
    def test_none_when_absent_or_invalid(self, text: str) -> None:
        assert version_from_pyproject(text) is None


class TestHubName:
    def test_literal_name(self) -> None:
        assert hub_name_from_host_json(host_json("ReleaseHub"), {}) == "ReleaseHub"

    def test_setting_reference_resolved_from_environment(self) -> None:
        env = {"TASK_HUB": "StagingHub2"}
        assert hub_name_from_host_json(host_json("%TASK_HUB%"), env) == "StagingHub2"

    def test_unset_setting_reference(self) -> None:
        assert hub_name_from_host_json(host_json("%TASK_HUB%"), {}) is None

    @pytest.mark.parametrize(
        "text",
        [
            "",  # empty file
            "not json",
            "[]",  # not an object
            json.dumps({"version": "2.0"}),  # no extensions
            json.dumps({"extensions": {"durableTask": []}}),  # wrong shape
            json.dumps({"extensions": {"durableTask": {}}}),  # no hubName
            host_json(42),  # not a string
            host_json("Release-Hub"),  # hyphen not allowed
        ],
    )
    def test_none_when_absent_or_invalid(self, text: str) -> None:
        assert hub_name_from_host_json(text, {}) is None

    @pytest.mark.parametrize(
        ("name", "valid"),
        [
            ("ReleaseHub", True),
            ("abc", True),  # shortest allowed
            ("a" * 45, True),  # longest allowed
            ("ab", False),  # too short
            ("a" * 46, False),  # too long
            ("1Hub", False),  # must start with a letter
            ("Hub_1", False),  # letters and digits only
            ("", False),
        ],
    )
    def test_hub_name_rules(self, name: str, valid: bool) -> None:
        assert is_valid_hub_name(name) is valid


class TestFromFiles:
    def test_repo_version_is_pyproject_version(self) -> None:
        expected = version_from_pyproject((REPO / "pyproject.toml").read_text("utf-8"))
        assert expected == "0.1.0"
        assert app_version(REPO) == expected

    def test_repo_hub_name(self) -> None:
        assert durable_hub_name(REPO, {}) == "ReleaseHub"

    def test_missing_pyproject_falls_back_to_metadata_or_unknown(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(app_info, "DISTRIBUTION_NAME", "no-such-distribution-xyz")
        assert app_version(tmp_path) == app_info.UNKNOWN_VERSION

    def test_missing_pyproject_uses_installed_metadata(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(app_info, "DISTRIBUTION_NAME", "pytest")
        assert app_version(tmp_path) == pytest.__version__

    def test_missing_host_json(self, tmp_path: Path) -> None:
        assert durable_hub_name(tmp_path, {}) is None
