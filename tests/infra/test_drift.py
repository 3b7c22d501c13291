"""The drift test: what the code reads and calls against what infra/ provides, and proof that
it fails when infra/ loses a setting or a role."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.infra.drift import ROOT, Drift, Use, code_uses, find_drift, infra_provides


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    """A copy of infra/ a test may break."""
    return Path(shutil.copytree(ROOT / "infra", tmp_path / "infra"))


def _edit(path: Path, old: str, new: str = "") -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _drop_resource(path: Path, symbol: str) -> None:
    """Remove `resource <symbol> ... = {` up to its closing brace at the start of a line."""
    text = path.read_text(encoding="utf-8")
    block = re.search(rf"^resource {symbol} .*?^\}}\n", text, flags=re.M | re.S)
    assert block is not None, f"no resource {symbol} in {path}"
    path.write_text(text.replace(block.group(0), ""), encoding="utf-8")


def _missing(drift: list[Drift]) -> set[tuple[str, str, str]]:
    return {(item.use.kind, item.use.name, item.missing) for item in drift}


def test_infra_provides_every_setting_the_code_reads_and_every_role_its_clients_need() -> None:
    drift = find_drift()
    assert drift == [], "\n".join(map(str, drift))


def test_a_setting_removed_from_infra_is_reported_with_where_the_code_reads_it(
        infra_copy: Path) -> None:
    _edit(infra_copy / "modules" / "app-settings.bicep", "  LEDGER_TABLE_PREFIX: 'release'\n")

    drift = find_drift(ROOT, infra_copy)

    assert _missing(drift) == {("setting", "LEDGER_TABLE_PREFIX",
                                "the app setting LEDGER_TABLE_PREFIX")}
    assert {item.use.where.split(":")[0] for item in drift} == {
        use.where.split(":")[0] for use in code_uses() if use.name == "LEDGER_TABLE_PREFIX"}


def test_an_identity_property_removed_from_infra_is_reported(infra_copy: Path) -> None:
    _edit(infra_copy / "modules" / "app-settings.bicep",
          "  AzureWebJobsStorage__clientId: identityClientId\n")

    assert _missing(find_drift(ROOT, infra_copy)) == {
        ("setting", "AzureWebJobsStorage__clientId",
         "the app setting AzureWebJobsStorage__clientId")}


def test_a_role_removed_from_infra_is_reported_for_the_client_that_needs_it(
        infra_copy: Path) -> None:
    _drop_resource(infra_copy / "modules" / "registry-access.bicep", "push")

    assert _missing(find_drift(ROOT, infra_copy)) == {
        ("client", "ContainerRegistryClient", "AcrPush"),
        ("audience", "https://containerregistry.azure.net", "AcrPull or AcrPush")}


def test_a_role_granted_on_the_wrong_kind_of_resource_is_reported(infra_copy: Path) -> None:
    roles = infra_copy / "modules" / "app-roles.bicep"
    text = roles.read_text(encoding="utf-8")
    block = re.search(r"^resource tableContributor .*?^\}\n", text, flags=re.M | re.S)
    assert block is not None
    roles.write_text(text.replace(block.group(0), block.group(0).replace(
        "  scope: storage\n", "  scope: vault\n")), encoding="utf-8")

    assert _missing(find_drift(ROOT, infra_copy)) == {
        ("client", "DFApp", "Storage Table Data Contributor"),
        ("client", "TableServiceClient", "Storage Table Data Contributor")}


def test_the_import_action_removed_from_the_custom_role_is_reported(infra_copy: Path) -> None:
    _edit(infra_copy / "modules" / "registry-access.bicep",
          "          'Microsoft.ContainerRegistry/registries/importImage/action'\n")

    assert _missing(find_drift(ROOT, infra_copy)) == {
        ("client", "ContainerRegistryManagementClient",
         "Microsoft.ContainerRegistry/registries/importImage/action")}


def test_the_aks_role_removed_is_reported_for_the_token_audience(infra_copy: Path) -> None:
    _drop_resource(infra_copy / "modules" / "aks-access.bicep", "writer")

    assert _missing(find_drift(ROOT, infra_copy)) == {
        ("audience", "6dae42f8-4368-4678-94ff-3960e28e3630",
         "Azure Kubernetes Service RBAC Writer or Azure Kubernetes Service RBAC Admin"
         " or Azure Kubernetes Service RBAC Cluster Admin")}


def test_the_durable_task_hub_roles_are_needed_by_the_app_itself(infra_copy: Path) -> None:
    _drop_resource(infra_copy / "modules" / "app-roles.bicep", "queueContributor")

    assert _missing(find_drift(ROOT, infra_copy)) == {
        ("client", "DFApp", "Storage Queue Data Contributor")}


def test_the_scan_finds_reads_through_constants_helpers_fstrings_and_bindings(
        tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "__init__.py").write_text("")
    (tmp_path / "shared" / "names.py").write_text('TOKEN_SETTING = "IMPORTED"\n')
    (tmp_path / "shared" / "reads.py").write_text(textwrap.dedent('''
        import os
        from azure.keyvault.secrets import SecretClient
        from .names import TOKEN_SETTING

        CONN = "Store"
        KEY: str = "VIA_HELPER"

        def _key(settings, name, required):
            return settings.get(name)

        def read(environ=None, settings=None, other=None):
            os.environ.get("DIRECT")
            os.getenv("GETENV")
            (environ if environ is not None else os.environ).get(TOKEN_SETTING)
            settings[f"{CONN}__clientId"]
            _key(settings, KEY, required=True)
            other.get("NOT_A_SETTING")
            for name in ("LOOPED",):
                os.environ.get(name)
            return SecretClient("https://v.vault.azure.net", None)

        class Reader:
            def _read(self, name):
                return os.environ.get(name)

            def value(self):
                return self._read("VIA_METHOD")
        '''))
    (tmp_path / "function_app.py").write_text(textwrap.dedent('''
        AUDIENCE = "https://prometheus.monitor.azure.com/.default"
        @bp.timer_trigger(schedule="%SCHEDULE%", arg_name="timer")
        def tick(timer):
            pass
        '''))

    found = {(use.kind, use.name) for use in code_uses(tmp_path)}

    assert found == {("setting", "DIRECT"), ("setting", "GETENV"), ("setting", "IMPORTED"),
                     ("setting", "Store__clientId"), ("setting", "VIA_HELPER"),
                     ("setting", "VIA_METHOD"),
                     ("setting", "SCHEDULE"), ("client", "SecretClient"),
                     ("audience", "https://prometheus.monitor.azure.com")}


def test_a_connection_is_met_by_any_of_its_forms_but_identity_properties_are_not(
        tmp_path: Path, infra_copy: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "reads.py").write_text(textwrap.dedent('''
        def read(settings):
            settings.get("AzureWebJobsStorage")
            settings.get("AzureWebJobsStorage__tableServiceUri")
            settings.get("AzureWebJobsStorage__credential")
            settings.get("WEBSITE_HOSTNAME")
            settings.get("Other__clientId")
        '''))
    assert "AzureWebJobsStorage__tableServiceUri" not in infra_provides(infra_copy).settings

    drift = find_drift(tmp_path, infra_copy)

    assert [(item.use, item.missing) for item in drift] == [
        (Use("setting", "Other__clientId", "shared/reads.py:7"),
         "the app setting Other__clientId")]
