"""infra/ read as data: every Bicep file parses, and the parts a wrong value would turn into a
security hole or a silent stop say what the app and the README expect."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.approvals.tokens import MIN_KEY_BYTES
from tests.infra.drift import ROOT, parse_bicep

INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


def _module(name: str) -> dict[str, Any]:
    return parse_bicep(INFRA / "modules" / f"{name}.bicep")


def _body(resource: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = resource["config"]
    return config["config"] if "condition" in config else config


def _readme_deploy_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Deploying to Azure")
    return text[start:text.index("\n## ", start + 1)]


def _decorated(path: Path, decorator: str) -> list[tuple[str, ast.Call]]:
    """(function name, decorator call) for each function decorated with `<x>.<decorator>(...)`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.name, call) for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for call in node.decorator_list
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and call.func.attr == decorator]


def test_there_are_bicep_files_and_main_calls_every_module() -> None:
    modules = {Path(body["detail"]["path"]).name
               for body in parse_bicep(INFRA / "main.bicep")["modules"].values()}
    assert modules == {path.name for path in (INFRA / "modules").glob("*.bicep")}


@pytest.mark.parametrize("path", BICEP_FILES, ids=[str(p.relative_to(INFRA)) for p in BICEP_FILES])
def test_every_bicep_file_parses(path: Path) -> None:
    document = parse_bicep(path)
    assert document.get("resources") or document.get("modules") or document.get("outputs")


def test_the_app_runs_on_flex_consumption_with_python_3_11_as_the_user_assigned_identity() -> None:
    app = _module("functionapp")["resources"]
    assert _body(app["plan"])["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    properties = _body(app["app"])["properties"]
    assert properties["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    assert _body(app["app"])["identity"]["type"] == "UserAssigned"
    storage = properties["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert storage["type"] == "UserAssignedIdentity"


def test_storage_takes_no_shared_keys_and_the_host_uses_the_identity() -> None:
    account = _body(_module("storage")["resources"]["storage"])["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    settings = _module("app-settings")["variables"]["appSettings"]["value"]
    assert "AzureWebJobsStorage" not in settings  # no connection string, so no key
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    # DefaultAzureCredential() and the host's storage connection pick the same identity.
    assert settings["AzureWebJobsStorage__clientId"] == settings["AZURE_CLIENT_ID"] \
        == "identityClientId"


def test_secret_settings_are_key_vault_references_and_secure_parameters_never_settings() -> None:
    document = _module("app-settings")
    settings = document["variables"]["appSettings"]["value"]
    vault_reference = document["variables"]["vaultRef"]["value"]
    assert vault_reference.startswith("@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=")
    for name in ("APPROVAL_SIGNING_KEY", "REGISTRY_WEBHOOK_TOKEN"):
        assert settings[name].startswith("${vaultRef}"), name
    previous = settings["APPROVAL_SIGNING_KEY_PREVIOUS"]["operator"]["operands"]
    assert previous["false_value"].startswith("${vaultRef}")
    secure = {name for path in BICEP_FILES
              for name, param in (parse_bicep(path).get("parameters") or {}).items()
              if {"type": "secure"} in param["decorators"]}
    assert secure, "the secrets arrive as @secure() parameters"
    assert not secure & set(json.dumps(settings).replace("$", " ").replace("{", " ")
                            .replace("}", " ").split())


def test_sign_in_is_required_except_exactly_the_registry_routes_the_readme_names() -> None:
    auth = _body(_module("functionapp")["resources"]["auth"])["properties"]
    assert auth["platform"]["enabled"] is True
    validation = auth["globalValidation"]
    assert validation["requireAuthentication"] is True
    excluded = validation["excludedPaths"]

    triggers = ROOT / "triggers" / "registry_events.py"
    routes = [call.keywords for _, call in _decorated(triggers, "route")]
    http = ["/api/" + keyword.value.value for keywords in routes for keyword in keywords
            if keyword.arg == "route" and isinstance(keyword.value, ast.Constant)]
    native = ["/runtime/webhooks/eventgrid"] if _decorated(triggers, "event_grid_trigger") else []
    assert sorted(excluded) == sorted(http + native) == ["/api/registry/events",
                                                        "/runtime/webhooks/eventgrid"]
    readme = _readme_deploy_section()
    for path in excluded:
        assert f"`{path}`" in readme, path


def test_event_grid_delivers_pushes_to_the_native_trigger_leaving_out_prod_retags() -> None:
    events = _module("registry-events")["resources"]
    subscription = _body(events["pushes"])["properties"]
    destination = subscription["destination"]
    function = destination["properties"]["resourceId"].rsplit("/", 1)[1]
    triggers = ROOT / "triggers" / "registry_events.py"
    assert [name for name, _ in _decorated(triggers, "event_grid_trigger")] == [function]
    assert destination["endpointType"] == "AzureFunction"
    assert subscription["filter"]["includedEventTypes"] == [
        "Microsoft.ContainerRegistry.ImagePushed"]
    assert subscription["filter"]["advancedFilters"] == [
        {"operatorType": "StringNotBeginsWith", "key": "data.target.repository",
         "values": ["prod/"]}]
    hook = _body(events["webhook"])["properties"]
    assert hook["serviceUri"] == "https://${functionAppHostName}/api/registry/events"
    assert hook["customHeaders"] == {"Authorization": "Bearer ${webhookToken}"}


def _without_provider(host: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(host))
    del copy["extensions"]["durableTask"]["storageProvider"]
    return copy


def test_the_two_durable_backends_differ_only_in_the_storage_provider() -> None:
    storage = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    scheduler = json.loads((ROOT / "host.dts.json").read_text(encoding="utf-8"))

    assert _without_provider(storage) == _without_provider(scheduler)
    assert storage != scheduler
    assert "type" not in storage["extensions"]["durableTask"]["storageProvider"]
    provider = scheduler["extensions"]["durableTask"]["storageProvider"]
    assert provider["type"] == "azureManaged"
    settings = _module("app-settings")["variables"]["appSettings"]["value"]
    assert provider["connectionStringName"] in settings
    hub = parse_bicep(INFRA / "main.bicep")["variables"]["taskHubName"]["value"]
    assert storage["extensions"]["durableTask"]["hubName"] == hub


def test_azd_finds_the_app_and_its_parameters() -> None:
    project = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert project["services"]["api"] == {"project": ".", "language": "python",
                                          "host": "function"}
    app = _body(_module("functionapp")["resources"]["app"])
    # azd deploys the service to the resource tagged with its name.
    assert app["tags"]["function"]["parameters"]["arg_2"] == {"'azd-service-name'": "api"}
    for hook in project["hooks"].values():
        script = hook["run"]
        if script.startswith("./"):
            assert (ROOT / script).is_file(), script
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    declared = parse_bicep(INFRA / "main.bicep")["parameters"]
    assert set(parameters["parameters"]) <= set(declared)
    # What azd must ask for: the parameters with neither a value here nor a default.
    asked = {name for name, param in declared.items()
             if param.get("default") is None and name not in parameters["parameters"]}
    assert asked == {"registryId", "authClientId"}


# azd's secretOrRandomPassword generates 5 lowercase letters, 5 uppercase letters, 5 digits.
AZD_PASSWORD_LENGTH = 15


def test_generated_secrets_are_lengthened_to_what_the_app_accepts() -> None:
    vault = _module("keyvault")
    variables = vault["variables"]
    assert variables["minSecretLength"]["value"] == MIN_KEY_BYTES
    fills = variables["fill"]["value"]["function"]["parameters"]["arg_1"]
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    generated = parameters["parameters"]["secretFill"]["value"]
    assert set(generated) == set(fills)
    assert set(generated.values()) == {"$(secretOrRandomPassword)"}
    for secret, param in (("signingKeyValue", "approvalSigningKey"),
                          ("webhookTokenValue", "registryWebhookToken")):
        choice = variables[secret]["value"]["operator"]["operands"]
        assert choice["true_value"] == param  # a long value (read back, or by hand) is kept
        parts = re.findall(r"\$\{([^}]+)\}", choice["false_value"])
        assert parts[0] == param and all(part.removeprefix("fill.") in fills
                                         for part in parts[1:])
        assert len(parts) * AZD_PASSWORD_LENGTH >= MIN_KEY_BYTES
    assert {_body(r)["properties"]["value"] for r in vault["resources"].values()
            if r["type"] == "Microsoft.KeyVault/vaults/secrets"} == {"signingKeyValue",
                                                                     "webhookTokenValue"}


def _module_body(module: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = module["config"]
    while "params" not in body:  # under a condition or a loop
        body = body["config"]
    return body


def test_every_module_call_passes_declared_parameters_and_all_the_required_ones() -> None:
    main = parse_bicep(INFRA / "main.bicep")
    text = (INFRA / "main.bicep").read_text(encoding="utf-8")
    for symbol, module in main["modules"].items():
        target = parse_bicep(INFRA / module["detail"]["path"])
        declared = target.get("parameters") or {}
        passed = set(_module_body(module)["params"])
        required = {name for name, param in declared.items() if param.get("default") is None}
        assert passed <= set(declared), (symbol, passed - set(declared))
        assert required <= passed, (symbol, required - passed)
        used = set(re.findall(rf"\b{symbol}\.outputs\.(\w+)", text))
        assert used <= set(target.get("outputs") or {}), (symbol, used)
