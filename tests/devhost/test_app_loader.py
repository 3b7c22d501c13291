"""Importing function_app.py and indexing its functions."""

from __future__ import annotations

from pathlib import Path

import azure.functions as func
import pytest

from devhost.app_loader import (
    AppImportError,
    AppLoadError,
    find_app,
    import_app_module,
    index_functions,
    load_app,
)


def write_app(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "function_app.py").write_text(source)
    return directory


def test_index_describes_trigger_bindings_and_callable(apps: Path) -> None:
    index = load_app(apps / "http_app")
    echo = index.get("echo")
    assert echo is not None
    assert echo.trigger_type == "httpTrigger"
    assert echo.trigger["route"] == "echo/{*path}" and echo.trigger["methods"] == ["POST", "PUT"]
    assert echo.bindings_of("http") == [{"direction": "OUT", "type": "http", "name": "$return"}]
    assert echo.user_function.__name__ == "echo"
    assert index.get("out_binding").parameters == ("req", "res")
    assert not index.has_durable


def test_get_functions_is_called_exactly_once() -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route()
    def ping(req: func.HttpRequest) -> str:
        return "pong"

    calls = []
    original = app.get_functions
    app.get_functions = lambda: calls.append(1) or original()
    index = index_functions(app)
    assert calls == [1]
    assert [f.name for f in index] == ["ping"]
    with pytest.raises(ValueError):
        original()  # why once: the SDK refuses a second call


def test_durable_app_is_flagged(apps: Path) -> None:
    index = load_app(apps / "activity_app")
    assert index.has_durable
    assert index.get("process_order").trigger_type == "orchestrationTrigger"


def test_missing_function_app(tmp_path: Path) -> None:
    with pytest.raises(AppLoadError, match="function_app.py not found"):
        import_app_module(tmp_path)


def test_import_error_keeps_the_cause(apps: Path) -> None:
    with pytest.raises(AppImportError, match="missing dependency frobnicate") as caught:
        import_app_module(apps / "broken_import_app")
    assert isinstance(caught.value.__cause__, ImportError)


def test_module_without_or_with_two_apps(tmp_path: Path) -> None:
    none = import_app_module(write_app(tmp_path / "none", "X = 1\n"))
    with pytest.raises(AppLoadError, match="no FunctionApp"):
        find_app(none)
    two = import_app_module(write_app(tmp_path / "two", (
        "import azure.functions as func\n"
        "a = func.FunctionApp()\nb = func.FunctionApp()\nalias = a\n")))
    with pytest.raises(AppLoadError, match="several FunctionApp instances \\(a, b\\)"):
        find_app(two)
    aliased = import_app_module(write_app(tmp_path / "aliased", (
        "import azure.functions as func\napp = func.FunctionApp()\nsame = app\n")))
    assert find_app(aliased) is aliased.app


def test_parameter_without_binding_is_refused(tmp_path: Path) -> None:
    directory = write_app(tmp_path / "unbound", (
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.route()\n"
        "def f(req, extra):\n"
        "    return ''\n"))
    with pytest.raises(AppLoadError, match="function f: parameters extra"):
        load_app(directory)


def test_duplicate_function_names_are_refused(tmp_path: Path) -> None:
    directory = write_app(tmp_path / "dupes", (
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.function_name('same')\n@app.route(route='a')\ndef a(req):\n    return ''\n"
        "@app.function_name('same')\n@app.route(route='b')\ndef b(req):\n    return ''\n"))
    with pytest.raises(AppLoadError, match="same"):
        load_app(directory)
