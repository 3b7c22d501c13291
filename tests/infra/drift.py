"""Drift between the code and infra/: app settings the code reads and Azure clients it builds,
against the app settings and role assignments the Bicep provides.

The code side is found by scanning the code's AST, never from a list of settings: reads of
`os.environ` / `os.getenv` / a settings mapping (a name such as `environ` or `settings`), the
project's helpers that read one of their parameters from such a mapping, and `%SETTING%`
binding expressions in decorators. What each Azure client needs is product knowledge, kept
below as maps from client (or token audience) to the built-in roles that allow its calls, and
from role to the kind of resource it must be granted on. Not checked: which resource of that
kind (a parameter at deployment time) and that the assignee is the app's identity.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

import pycep

ROOT = Path(__file__).resolve().parents[2]
CODE_PATHS = ("shared", "triggers", "activities", "orchestrations", "function_app.py",
              "blueprints.py")
# Parameter and variable names the code gives a mapping of app settings.
SETTINGS_MAPPINGS = frozenset({"environ", "settings"})
# Settings App Service sets on every app itself (WEBSITE_HOSTNAME, WEBSITE_AUTH_ENABLED, ...).
PLATFORM_PREFIXES = ("WEBSITE_",)
# Identity-based connection properties that say where the service is: any one of them (or the
# connection string under the bare name) locates the connection (Functions' `<name>__<prop>`).
LOCATION_PROPERTIES = frozenset({"accountName", "serviceUri", "blobServiceUri",
                                 "queueServiceUri", "tableServiceUri", "fullyQualifiedNamespace"})
BINDING_EXPRESSION = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")

ROLE_IDS: dict[str, str] = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "Log Analytics Reader": "73c42c96-874c-492b-b04d-ab87d138a893",
    "Monitoring Reader": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
    "Monitoring Data Reader": "b0d8363b-8ddd-447d-831f-62ca05bff136",
    "Azure Kubernetes Service RBAC Writer": "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
    "Azure Kubernetes Service RBAC Admin": "3498e952-d568-435e-9b2c-8d77e338d7f7",
    "Azure Kubernetes Service RBAC Cluster Admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
}
IMPORT_IMAGE = "Microsoft.ContainerRegistry/registries/importImage/action"
# Where each role (or action) means something: the resource types it must be granted on.
_STORAGE = ("Microsoft.Storage/storageAccounts",)
_REGISTRY = ("Microsoft.ContainerRegistry/registries",)
_LOGS = ("Microsoft.Insights/components", "Microsoft.OperationalInsights/workspaces")
_CLUSTER = ("Microsoft.ContainerService/managedClusters",)
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "Storage Blob Data Owner": _STORAGE,
    "Storage Blob Data Contributor": _STORAGE,
    "Storage Queue Data Contributor": _STORAGE,
    "Storage Table Data Contributor": _STORAGE,
    "Key Vault Secrets User": ("Microsoft.KeyVault/vaults",),
    "AcrPull": _REGISTRY,
    "AcrPush": _REGISTRY,
    IMPORT_IMAGE: _REGISTRY,
    "Log Analytics Reader": _LOGS,
    "Monitoring Reader": _LOGS,
    "Monitoring Data Reader": ("Microsoft.Monitor/accounts",),
    "Azure Kubernetes Service RBAC Writer": _CLUSTER,
    "Azure Kubernetes Service RBAC Admin": _CLUSTER,
    "Azure Kubernetes Service RBAC Cluster Admin": _CLUSTER,
}

# What a client needs: each entry is one need, met by any one of its roles (or actions).
Need = tuple[str, ...]
_TABLES: tuple[Need, ...] = (("Storage Table Data Contributor",),)
_BLOBS: tuple[Need, ...] = (("Storage Blob Data Contributor", "Storage Blob Data Owner"),)
CLIENT_NEEDS: dict[str, tuple[Need, ...]] = {
    "TableServiceClient": _TABLES,
    "TableClient": _TABLES,
    "BlobServiceClient": _BLOBS,
    "ContainerClient": _BLOBS,
    "BlobClient": _BLOBS,
    "QueueServiceClient": (("Storage Queue Data Contributor",),),
    "QueueClient": (("Storage Queue Data Contributor",),),
    "SecretClient": (("Key Vault Secrets User",),),
    # Promotion pushes the prod/ tag's manifest (and blobs to another registry): AcrPull reads only.
    "ContainerRegistryClient": (("AcrPush",),),
    # ACR ImportImage is an ARM action that AcrPush does not grant.
    "ContainerRegistryManagementClient": ((IMPORT_IMAGE,),),
    "LogsQueryClient": (("Log Analytics Reader", "Monitoring Reader"),),
    "MetricsQueryClient": (("Monitoring Reader",),),
    # Durable Functions on Azure Storage (the default backend): task hub blobs, queues, tables.
    "DFApp": (("Storage Blob Data Owner",), ("Storage Queue Data Contributor",),
              ("Storage Table Data Contributor",)),
}
# Tokens the code asks for itself (`credential.get_token(scope)`), by audience.
AUDIENCE_NEEDS: dict[str, tuple[Need, ...]] = {
    # AKS's Entra server app: Kubernetes RBAC through Azure RBAC on the cluster.
    "6dae42f8-4368-4678-94ff-3960e28e3630": (("Azure Kubernetes Service RBAC Writer",
                                              "Azure Kubernetes Service RBAC Admin",
                                              "Azure Kubernetes Service RBAC Cluster Admin"),),
    # Azure Monitor managed Prometheus's query endpoint.
    "https://prometheus.monitor.azure.com": (("Monitoring Data Reader",),),
    # ACR's token exchange (the registry client's audience; pulls need at least AcrPull).
    "https://containerregistry.azure.net": (("AcrPull", "AcrPush"),),
    # The Logs query API (Application Insights and Log Analytics).
    "https://api.loganalytics.io": (("Log Analytics Reader", "Monitoring Reader"),),
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Use:
    """One thing the code needs from Azure: a setting, a client or a token audience."""

    kind: str  # "setting", "client" or "audience"
    name: str
    where: str  # path:line


@dataclass(frozen=True)
class Drift:
    """A use infra/ does not provide for; `missing` names the setting or the roles wanted."""

    use: Use
    missing: str

    def __str__(self) -> str:
        return f"{self.use.where}: {self.use.kind} {self.use.name}: infra/ lacks {self.missing}"


# ---- the code side -------------------------------------------------------------------------


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    constants: dict[str, ast.expr] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # alias -> (module, name)
    helpers: dict[str, tuple[int, str]] = field(default_factory=dict)  # function -> (index, param)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _load(root: Path) -> dict[str, _Module]:
    files: list[Path] = []
    for entry in CODE_PATHS:
        path = root / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists()
                     else [])
    modules: dict[str, _Module] = {}
    for path in files:
        name = _module_name(path, root)
        module = _Module(name, path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in module.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                module.constants[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                    and node.value is not None:
                module.constants[node.target.id] = node.value
        for found in ast.walk(module.tree):
            if isinstance(found, ast.ImportFrom):
                base = found.module or ""
                if found.level:
                    anchor = package.split(".")[: len(package.split(".")) - found.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in found.names:
                    module.imports[alias.asname or alias.name] = (base, alias.name)
        modules[name] = module
    return modules


class _Resolver:
    """Turns expressions into the strings they hold, following constants across imports."""

    def __init__(self, modules: Mapping[str, _Module]) -> None:
        self.modules = modules

    def string(self, node: ast.expr | None, module: _Module, depth: int = 0) -> str | None:
        if node is None or depth > 8:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            target = self.constant(node.id, module)
            return None if target is None else self.string(target[0], target[1], depth + 1)
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            for value in node.values:
                inner = value.value if isinstance(value, ast.FormattedValue) else value
                text = self.string(inner, module, depth + 1)
                if text is None:
                    return None
                parts.append(text)
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self.string(node.left, module, depth + 1)
            right = self.string(node.right, module, depth + 1)
            return None if left is None or right is None else left + right
        return None

    def constant(self, name: str, module: _Module) -> tuple[ast.expr, _Module] | None:
        if name in module.constants:
            return module.constants[name], module
        if name in module.imports:
            source, original = module.imports[name]
            other = self.modules.get(source)
            if other is not None and other is not module:
                return self.constant(original, other)
        return None

    def helper(self, call: ast.Call, module: _Module) -> tuple[int, str] | None:
        func = call.func
        name = func.id if isinstance(func, ast.Name) else \
            func.attr if isinstance(func, ast.Attribute) else None
        if name is None:
            return None
        if name in module.helpers:
            return module.helpers[name]
        if name in module.imports:
            source, original = module.imports[name]
            other = self.modules.get(source)
            if other is not None:
                return other.helpers.get(original)
        return None


def _is_settings_mapping(node: ast.expr) -> bool:
    """`os.environ`, a settings name, or a choice between them (`environ or os.environ`)."""
    if isinstance(node, ast.Name):
        return node.id in SETTINGS_MAPPINGS
    if isinstance(node, ast.Attribute):
        return node.attr == "environ" and isinstance(node.value, ast.Name) \
            and node.value.id == "os"
    if isinstance(node, ast.IfExp):
        return _is_settings_mapping(node.body) or _is_settings_mapping(node.orelse)
    if isinstance(node, ast.BoolOp):
        return any(_is_settings_mapping(value) for value in node.values)
    return False


def _setting_key(node: ast.AST) -> ast.expr | None:
    """The key expression of a settings read (`m.get(k)`, `m[k]`, `os.getenv(k)`), if any."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get" \
                and _is_settings_mapping(func.value):
            return node.args[0]
        if isinstance(func, ast.Attribute) and func.attr == "getenv" \
                and isinstance(func.value, ast.Name) and func.value.id == "os":
            return node.args[0]
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
            and _is_settings_mapping(node.value):
        return node.slice
    return None


def _find_helpers(module: _Module) -> None:
    """Functions that read one of their own parameters as a setting name."""
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        params = [arg.arg for arg in (*node.args.posonlyargs, *node.args.args)]
        if params[:1] in (["self"], ["cls"]):
            params = params[1:]  # called as obj.method(...): arguments start after it
        for inner in ast.walk(node):
            key = _setting_key(inner)
            if isinstance(key, ast.Name) and key.id in params \
                    and key.id not in SETTINGS_MAPPINGS:
                module.helpers[node.name] = (params.index(key.id), key.id)
                break


def _client_called(node: ast.AST) -> str | None:
    """The Azure client a call builds: `Client(...)`, `mod.Client(...)`, `Client.from_x(...)`."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        name = func.id
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
            and func.value.id in CLIENT_NEEDS:
        name = func.value.id  # a constructor classmethod such as from_connection_string
    elif isinstance(func, ast.Attribute):
        name = func.attr
    else:
        return None
    return name if name in CLIENT_NEEDS else None


def _where(module: _Module, node: ast.AST, root: Path) -> str:
    return f"{module.path.relative_to(root)}:{getattr(node, 'lineno', 0)}"


@cache
def code_uses(root: Path = ROOT) -> list[Use]:
    """Every app setting the code reads, Azure client it builds and token audience it uses."""
    modules = _load(root)
    for module in modules.values():
        _find_helpers(module)
    resolve = _Resolver(modules)
    uses: set[Use] = set()
    for module in modules.values():
        for node in ast.walk(module.tree):
            key = _setting_key(node)
            name = resolve.string(key, module) if key is not None else None
            if isinstance(node, ast.Call) and name is None:
                helper = resolve.helper(node, module)
                if helper is not None:
                    index, param = helper
                    argument = node.args[index] if index < len(node.args) else next(
                        (kw.value for kw in node.keywords if kw.arg == param), None)
                    name = resolve.string(argument, module)
            if name is not None:
                uses.add(Use("setting", name, _where(module, node, root)))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    for inner in ast.walk(decorator):
                        if isinstance(inner, ast.Constant | ast.JoinedStr):
                            text = resolve.string(inner, module) or ""
                            for found in BINDING_EXPRESSION.findall(text):
                                uses.add(Use("setting", found, _where(module, inner, root)))
            called = _client_called(node)
            if called is not None:
                uses.add(Use("client", called, _where(module, node, root)))
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for audience in AUDIENCE_NEEDS:
                    if node.value.startswith(audience):
                        uses.add(Use("audience", audience, _where(module, node, root)))
    return sorted(uses, key=lambda use: (use.kind, use.name, use.where))


# ---- the infra side ------------------------------------------------------------------------


@dataclass(frozen=True)
class Provided:
    """What infra/ gives the app: setting names, and each role (GUID) or custom-role action
    granted with the type of the resource it is granted on."""

    settings: frozenset[str]
    grants: frozenset[tuple[str, str]]  # (role GUID or action, scope resource type)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _unwrap(config: Any) -> Any:
    """A resource's body, under its `if` condition or `for` loop."""
    while isinstance(config, dict) and "config" in config and "properties" not in config:
        config = config["config"]
    return config


@cache
def _parser() -> pycep.BicepParser:
    return pycep.BicepParser()


def parse_bicep(path: Path) -> dict[str, Any]:
    """One Bicep file as pycep-parser's JSON (ValueError or a lark error when it does not parse)."""
    return cast(dict[str, Any], _parser().parse(file_path=path))


def _scope_type(body: dict[str, Any], resources: Mapping[str, Any]) -> str:
    """The resource type a role assignment's `scope` names; the deployment's scope otherwise."""
    scope = body.get("scope")
    if isinstance(scope, str) and scope in resources:
        return str(resources[scope].get("type"))
    return "resourceGroup"


def infra_provides(infra: Path) -> Provided:
    """The app settings (keys of every `appSettings` variable) and the roles infra/ assigns."""
    settings: set[str] = set()
    grants: set[tuple[str, str]] = set()
    for path in sorted(infra.rglob("*.bicep")):
        document = parse_bicep(path)
        variables: dict[str, Any] = {name: body.get("value")
                                     for name, body in (document.get("variables") or {}).items()}
        resources: dict[str, Any] = document.get("resources") or {}
        value = variables.get("appSettings")
        if isinstance(value, dict):
            settings.update(value)
        for resource in resources.values():
            if resource.get("type") != "Microsoft.Authorization/roleAssignments":
                continue
            body = _unwrap(resource.get("config"))
            on = _scope_type(body, resources)
            granted = (body.get("properties") or {}).get("roleDefinitionId")
            for text in _strings(granted):
                if text in variables:
                    found = GUID.findall(" ".join(_strings(variables[text])))
                elif text in resources:
                    definition = _unwrap(resources[text].get("config"))
                    found = [action for permission in
                             (definition.get("properties") or {}).get("permissions", [])
                             for action in _strings(permission.get("actions", []))]
                else:
                    found = GUID.findall(text)
                grants.update((granted_id, on) for granted_id in found)
    return Provided(frozenset(settings), frozenset(grants))


# ---- the comparison ------------------------------------------------------------------------


def _setting_provided(name: str, settings: frozenset[str]) -> bool:
    if name in settings or name.startswith(PLATFORM_PREFIXES):
        return True
    base, _, prop = name.partition("__")
    if not prop:  # a connection: its string, or its identity-based properties
        return any(setting.startswith(f"{base}__") for setting in settings)
    if base in settings:  # the connection string form
        return True
    if prop in LOCATION_PROPERTIES:
        return any(setting.partition("__")[2] in LOCATION_PROPERTIES
                   for setting in settings if setting.startswith(f"{base}__"))
    return False


def _need_met(need: Need, provided: Provided) -> bool:
    """Some option of the need granted on a resource of the kind it applies to (or on a
    whole resource group)."""
    return any((ROLE_IDS.get(option, option), on) in provided.grants
               for option in need for on in (*ROLE_SCOPES[option], "resourceGroup"))


def find_drift(root: Path = ROOT, infra: Path | None = None) -> list[Drift]:
    """Each setting the code reads that infra/ does not set, and each client or audience
    whose role infra/ does not grant."""
    provided = infra_provides(infra or root / "infra")
    drift: list[Drift] = []
    for use in code_uses(root):
        if use.kind == "setting":
            if not _setting_provided(use.name, provided.settings):
                drift.append(Drift(use, f"the app setting {use.name}"))
            continue
        needs = CLIENT_NEEDS[use.name] if use.kind == "client" else AUDIENCE_NEEDS[use.name]
        for need in needs:
            if not _need_met(need, provided):
                drift.append(Drift(use, " or ".join(need)))
    return drift
