"""Reading a policy file: YAML, then the schema, then the cross-field rules.

Each stage reports all of its problems at once, each naming file, line and field; a
later stage runs only when the earlier ones found nothing. `policy_path` says which file
the app uses: `RELEASE_POLICY_FILE` (relative to the app root, or absolute), else
`release-policy.yaml` at the app root. Helm chart folders and values files are relative to
an app root; without one (`app_root=None`) they are neither checked nor read.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.app_info import APP_ROOT
from shared.config_sources import POLICY_FILE_SETTING

from . import semantics
from .app_files import read_helm_files
from .errors import PolicyError, Problem
from .model import Policy, build_policy
from .schema import PolicyDocument
from .source import Locator, PathPart, format_path, load_yaml

DEFAULT_POLICY_FILE = "release-policy.yaml"
_TYPE_WORDS = {"string_type": "a string", "int_type": "a whole number",
               "float_type": "a number", "bool_type": "true or false",
               "dict_type": "a mapping", "model_type": "a mapping", "list_type": "a list",
               "timedelta_type": "a duration such as 30m",
               "invalid-json-value": "a JSON value (quote dates and times)"}


def policy_path(environ: Mapping[str, str] | None = None, app_root: Path = APP_ROOT) -> Path:
    """The policy file the app uses (`RELEASE_POLICY_FILE`, else the default at the root)."""
    environ = os.environ if environ is None else environ
    configured = environ.get(POLICY_FILE_SETTING, "").strip()
    return app_root / (configured or DEFAULT_POLICY_FILE)  # an absolute path replaces the root


def load_policy(path: Path, app_root: Path | None = APP_ROOT) -> Policy:
    """Read and check the policy file at `path`; PolicyError names file, line and field.

    Helm chart folders and values files are taken from `app_root` (this app's by default)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as bad:
        reason = bad.strerror if isinstance(bad, OSError) and bad.strerror else str(bad)
        raise PolicyError([Problem(str(path), None, "", f"cannot read: {reason}")]) from None
    return parse_policy(text, str(path), app_root)


def load_app_policy(environ: Mapping[str, str] | None = None) -> Policy:
    """The policy of this app (see `policy_path`)."""
    return load_policy(policy_path(environ))


def parse_policy(text: str, source: str = "<policy>", app_root: Path | None = None) -> Policy:
    """Check policy text; `source` names it in errors. With `app_root`, Helm values files
    are read from it into the policy, and chart folders checked."""
    data, locator, problems = load_yaml(text, source)
    if problems:
        raise PolicyError(problems)
    if data is None:
        raise PolicyError([Problem(source, 1, "", "the policy is empty (expected registries"
                                                  " and services)")])
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as invalid:
        raise PolicyError([_problem(error, locator, source)
                           for error in invalid.errors(include_url=False)]) from None
    findings = semantics.check(document, locator.line)
    files = None
    if app_root is not None:
        files, file_findings = read_helm_files(document, app_root)
        findings += file_findings
    if findings:
        raise PolicyError([Problem(source, locator.line(path), format_path(path), message)
                           for path, message in findings])
    return build_policy(document, source, hashlib.sha256(text.encode()).hexdigest(), files)


def _problem(error: ErrorDetails, locator: Locator, source: str) -> Problem:
    loc: list[PathPart] = list(error["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc.pop()
    return Problem(source, locator.line(loc), format_path(loc), _message(error, loc, is_key))


def _message(error: ErrorDetails, loc: list[PathPart], is_key: bool) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind in ("value_error", "assertion_error"):
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"key {loc[-1]!r}: {message}" if is_key else message
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, not {_describe(value)}"
    if kind == "too_short" and isinstance(value, Sequence | Mapping):
        return "must not be empty"
    message = error["msg"].replace("Input should be", "must be")
    if kind in ("literal_error", "greater_than", "greater_than_equal", "less_than",
                "less_than_equal"):
        return f"{message}, not {_describe(value)}"
    return message


def _describe(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    kind = {bool: "boolean", int: "number", float: "number", str: "text"}.get(type(value))
    return f"{kind} {value!r}" if kind else type(value).__name__


def _unknown_field(loc: list[PathPart]) -> str:
    name = str(loc[-1])
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown field"
    allowed = [info.alias or field for field, info in model.model_fields.items()]
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field ({hint}expected one of: {', '.join(allowed)})"


def _model_at(loc: Sequence[PathPart]) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc`, by walking the annotations."""
    annotation: Any = PolicyDocument
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {info.alias or name: info for name, info in annotation.model_fields.items()}
            if part not in fields:
                return None
            annotation = fields[str(part)].annotation
        elif typing.get_origin(annotation) is list and isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
        else None


def _unwrap(annotation: Any) -> Any:
    """`X` from `Annotated[X, …]` and from `X | None`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
