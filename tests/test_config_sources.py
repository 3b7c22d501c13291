"""Unit tests for shared.config_sources: which sources are active, never their values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config_sources import (
    DEFAULTS,
    KNOWN_SETTINGS,
    ConfigSource,
    active_sources,
    detect_sources,
    is_key_vault_reference,
    parse_local_settings,
)

REPO = Path(__file__).resolve().parent.parent
KV_REF = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/storage/)"


def configured(sources: list[ConfigSource]) -> list[ConfigSource]:
    """The sources other than the embedded defaults (tested on their own below)."""
    return [s for s in sources if s.name != DEFAULTS]


class TestKeyVaultReference:
    @pytest.mark.parametrize(
        "value",
        [
            KV_REF,
            "@Microsoft.KeyVault(VaultName=kv;SecretName=storage)",
            "  @microsoft.keyvault(VaultName=kv;SecretName=storage)  ",  # case, whitespace
        ],
    )
    def test_references(self, value: str) -> None:
        assert is_key_vault_reference(value)

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "UseDevelopmentStorage=true",
            "@Microsoft.KeyVault(SecretUri=https://kv/secrets/x",  # unterminated
            "prefix @Microsoft.KeyVault(VaultName=kv;SecretName=x)",  # not at the start
        ],
    )
    def test_not_references(self, value: str) -> None:
        assert not is_key_vault_reference(value)


class TestParseLocalSettings:
    def test_values(self) -> None:
        text = json.dumps({"IsEncrypted": False, "Values": {"A": "1", "B": ""}})
        assert parse_local_settings(text) == {"A": "1", "B": ""}

    def test_no_values_section(self) -> None:
        assert parse_local_settings('{"IsEncrypted": false}') == {}

    def test_non_string_values_are_ignored(self) -> None:
        assert parse_local_settings('{"Values": {"A": 1, "B": null, "C": "x"}}') == {"C": "x"}

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("{", "not valid JSON"),
            ("// comment\n{}", "not valid JSON"),
            ("[]", "top level must be an object"),
            ('{"Values": []}', "'Values' must be an object"),
        ],
    )
    def test_errors_name_file_and_reason(self, text: str, reason: str) -> None:
        with pytest.raises(ValueError, match=reason) as caught:
            parse_local_settings(text)
        assert str(caught.value).startswith("local.settings.json: ")
        assert "\n" not in str(caught.value)


class TestActiveSources:
    def test_nothing_configured(self) -> None:
        assert configured(active_sources({}, None, policy_file_exists=False)) == []

    def test_unknown_environment_variables_are_not_reported(self) -> None:
        assert configured(active_sources({"PATH": "/usr/bin", "HOME": "/root"}, None, False)) == []

    def test_environment_lists_known_settings_in_fixed_order(self) -> None:
        env = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": "x", "OTHER": "y"}
        assert configured(active_sources(env, None, False)) == [
            ConfigSource("environment", ("AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME"))
        ]

    def test_blank_values_do_not_count(self) -> None:
        assert configured(active_sources({"AzureWebJobsStorage": "  "}, None, False)) == []

    def test_local_settings_present_even_if_empty(self) -> None:
        sources = configured(active_sources({}, {}, False))
        assert sources == [ConfigSource("local.settings.json", ())]

    def test_local_settings_and_environment_together(self) -> None:
        local = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "Custom": "x"}
        env = {"FUNCTIONS_WORKER_RUNTIME": "python"}
        assert configured(active_sources(env, local, False)) == [
            ConfigSource("local.settings.json", ("AzureWebJobsStorage",)),
            ConfigSource("environment", ("FUNCTIONS_WORKER_RUNTIME",)),
        ]

    def test_key_vault_reference_in_environment(self) -> None:
        sources = active_sources({"AzureWebJobsStorage": KV_REF}, None, False)
        assert ConfigSource("key-vault-references", ("AzureWebJobsStorage",)) in sources

    def test_key_vault_reference_in_local_settings(self) -> None:
        sources = active_sources({}, {"AzureWebJobsStorage": KV_REF}, False)
        assert configured(sources)[-1] == ConfigSource("key-vault-references",
                                                       ("AzureWebJobsStorage",))

    def test_policy_file_needs_setting_and_file(self) -> None:
        env = {"RELEASE_POLICY_FILE": "policy.yaml"}
        assert ConfigSource("policy-file", ("RELEASE_POLICY_FILE",)) in active_sources(
            env, None, True
        )
        assert all(s.name != "policy-file" for s in active_sources(env, None, False))
        assert configured(active_sources({"RELEASE_POLICY_FILE": ""}, None, True)) == []

    def test_policy_file_from_local_settings(self) -> None:
        local = {"RELEASE_POLICY_FILE": "policy.yaml"}
        assert configured(active_sources({}, local, True))[-1].name == "policy-file"

    def test_no_value_ever_appears(self) -> None:
        secret = "AccountKey=TOP-SECRET-VALUE"
        env = {name: secret for name in KNOWN_SETTINGS}
        rendered = json.dumps([s.to_dict() for s in active_sources(env, dict(env), True)])
        assert "TOP-SECRET" not in rendered

    def test_every_setting_falls_back_to_defaults_when_nothing_is_configured(self) -> None:
        assert active_sources({}, None, False) == [ConfigSource(DEFAULTS, KNOWN_SETTINGS)]

    def test_defaults_cover_only_settings_no_source_provides(self) -> None:
        env = {"AzureWebJobsStorage": "x"}
        local = {"FUNCTIONS_WORKER_RUNTIME": "python", "RELEASE_POLICY_FILE": "  "}
        assert active_sources(env, local, False)[-1] == ConfigSource(
            DEFAULTS, tuple(n for n in KNOWN_SETTINGS if n not in (
                "AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME")))

    def test_no_defaults_source_when_everything_is_configured(self) -> None:
        env = {name: "x" for name in KNOWN_SETTINGS}
        assert all(s.name != DEFAULTS for s in active_sources(env, None, False))

    def test_to_dict(self) -> None:
        source = ConfigSource("environment", ("A", "B"))
        assert source.to_dict() == {"name": "environment", "settings": ["A", "B"]}


class TestDetectSources:
    def test_empty_folder(self, tmp_path: Path) -> None:
        assert configured(detect_sources(tmp_path, {})) == []

    def test_local_settings_and_policy_file(self, tmp_path: Path) -> None:
        (tmp_path / "local.settings.json").write_text(
            json.dumps({"Values": {"RELEASE_POLICY_FILE": "policy.yaml"}})
        )
        (tmp_path / "policy.yaml").write_text("environments: []\n")
        assert configured(detect_sources(tmp_path, {})) == [
            ConfigSource("local.settings.json", ("RELEASE_POLICY_FILE",)),
            ConfigSource("policy-file", ("RELEASE_POLICY_FILE",)),
        ]

    def test_configured_policy_file_missing(self, tmp_path: Path) -> None:
        env = {"RELEASE_POLICY_FILE": "missing.yaml"}
        assert configured(detect_sources(tmp_path, env)) == [
            ConfigSource("environment", ("RELEASE_POLICY_FILE",))
        ]

    def test_malformed_local_settings_still_counts_as_present(self, tmp_path: Path) -> None:
        (tmp_path / "local.settings.json").write_text("{ not json")
        assert configured(detect_sources(tmp_path, {})) == [ConfigSource("local.settings.json", ())]


def test_sample_settings_list_every_known_setting() -> None:
    values = parse_local_settings((REPO / "local.settings.sample.json").read_text("utf-8"))
    assert sorted(values) == sorted(KNOWN_SETTINGS)
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
