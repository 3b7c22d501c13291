"""The domain stands below the Functions app: shared/ imports no trigger, activity,
orchestration or Functions SDK, so its services see no HTTP request and no Durable client."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ABOVE_THE_DOMAIN = ("triggers", "activities", "orchestrations", "function_app",
                    "azure.functions", "azure.durable_functions")


def imported(path: Path) -> set[str]:
    """Every module the file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_shared_imports_nothing_above_the_domain() -> None:
    wrong = sorted(f"{path.relative_to(REPO)} imports {name}"
                   for path in (REPO / "shared").rglob("*.py")
                   for name in imported(path)
                   if any(name == top or name.startswith(f"{top}.") for top in ABOVE_THE_DOMAIN))
    assert wrong == []


def test_the_check_sees_a_trigger_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from triggers.http import origin\nimport azure.functions\n")
    assert {"triggers.http", "azure.functions"} <= imported(module)
