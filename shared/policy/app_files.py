"""The app's files a policy names: Helm chart folders and values files, under the app root.

Values files are read here, once, at policy load: their content goes into the snapshot, so a
release never reads them again (replay stays stable when the files change). Chart folders are
only checked for a Chart.yaml. Paths may not lead outside the app root, symlinks included.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import helm
from .schema import PolicyDocument
from .source import PathPart, load_yaml

APP_MARKER = "function_app.py"
MAX_VALUES_FILE_BYTES = 256 * 1024  # every release's orchestration input carries the content
Finding = tuple[tuple[PathPart, ...], str]


def read_helm_files(document: PolicyDocument,
                    app_root: Path) -> tuple[dict[str, dict[str, Any]], list[Finding]]:
    """The values files of every Helm target (by path) and the problems of the files named."""
    root = app_root.resolve()
    files: dict[str, dict[str, Any]] = {}
    findings: list[Finding] = []
    for name, service in document.services.items():
        for index, environment in enumerate(service.environments):
            spec = environment.target.helm
            if spec is None:
                continue
            here = ("services", name, "environments", index, "target", "helm")
            if not helm.is_oci(spec.chart):
                findings += [((*here, "chart"), message)
                             for message in _chart_folder(root, spec.chart)]
            for position, path in enumerate(spec.values_files):
                values, problem = _values_file(root, path)
                if problem is not None:
                    findings.append(((*here, "valuesFiles", position), problem))
                elif values is not None:
                    files[path] = values
    return files, findings


def _inside(root: Path, relative: str) -> Path | None:
    """`root / relative` with symlinks resolved, or None when that leaves the root."""
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) else None


def _chart_folder(root: Path, relative: str) -> Iterator[str]:
    folder = _inside(root, relative)
    if folder is None:
        yield f"chart folder {relative!r} leads outside the app root {root}"
    elif not folder.is_dir():
        yield f"chart folder {relative!r} does not exist under the app root {root}"
    elif not (folder / "Chart.yaml").is_file():
        yield f"chart folder {relative!r} has no Chart.yaml (app root {root})"


def _values_file(root: Path, relative: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the file's values, None) or (None, why it cannot be used)."""
    path = _inside(root, relative)
    if path is None:
        return None, f"values file {relative!r} leads outside the app root {root}"
    try:
        if path.stat().st_size > MAX_VALUES_FILE_BYTES:
            return None, (f"values file {relative!r} is larger than"
                          f" {MAX_VALUES_FILE_BYTES // 1024} KiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, f"values file {relative!r} does not exist under the app root {root}"
    except (OSError, UnicodeDecodeError) as bad:
        reason = bad.strerror if isinstance(bad, OSError) and bad.strerror else str(bad)
        return None, f"values file {relative!r} cannot be read: {reason}"
    data, _, problems = load_yaml(text, relative)
    if problems:
        return None, f"values file {problems[0]}"
    if data is None:
        return {}, None  # an empty file sets nothing, as with `helm -f`
    if not isinstance(data, dict):
        return None, f"values file {relative!r} is not a mapping of values"
    where = helm.json_problem(data)
    if where is not None:
        return None, f"values file {relative!r}: {where}"
    return data, None


def find_app_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds the app (its function_app.py)."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / APP_MARKER).is_file():
            return folder
    return None

