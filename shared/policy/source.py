"""YAML text to plain data, remembering the line of every node for error messages.

PyYAML's composer gives nodes with `start_mark`; `Locator.line(path)` finds the line of
a field path (a key's line, or the nearest existing parent's for a missing field).
Duplicate keys, which PyYAML would silently collapse, are reported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Problem

PathPart = str | int
MERGE_TAG = "tag:yaml.org,2002:merge"


class Locator:
    """Lines (1-based) of the nodes of one YAML document."""

    def __init__(self, root: Node | None) -> None:
        self._root = root

    def line(self, path: Sequence[PathPart]) -> int:
        """Line of the node at `path`, or of its nearest existing parent."""
        node = self._root
        if node is None:
            return 1
        line = node.start_mark.line + 1
        for part in path:
            if isinstance(node, MappingNode):
                found = [(key, value) for key, value in node.value
                         if isinstance(key, ScalarNode) and key.value == str(part)]
                if not found:
                    break
                key, node = found[-1]  # the last one wins, as when constructing
                line = key.start_mark.line + 1
            elif isinstance(node, SequenceNode) and isinstance(part, int) and \
                    0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line


def load_yaml(text: str, source: str) -> tuple[Any, Locator, list[Problem]]:
    """Parse one YAML document; syntax errors and duplicate keys come back as problems."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        duplicates = _duplicate_keys(root, [], source, set()) if root is not None else []
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as bad:
        mark = bad.problem_mark or bad.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(part for part in (bad.context, bad.problem) if part)
        return None, Locator(None), [Problem(source, line, "", f"YAML syntax error: {reason}")]
    except yaml.YAMLError as bad:
        return None, Locator(None), [Problem(source, None, "", f"YAML syntax error: {bad}")]
    finally:
        loader.dispose()
    return data, Locator(root), duplicates


def format_path(path: Sequence[PathPart]) -> str:
    """`("services", "x", "environments", 1)` as `services.x.environments[1]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _duplicate_keys(node: Node, path: list[PathPart], source: str,
                    visited: set[int]) -> list[Problem]:
    problems: list[Problem] = []
    if id(node) in visited:  # an alias (possibly recursive) was checked where it is anchored
        return problems
    visited.add(id(node))
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == MERGE_TAG or not isinstance(key, ScalarNode):
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                problems.append(Problem(source, line, format_path([*path, key.value]),
                                        f"duplicate key (first at line {seen[key.value]})"))
            else:
                seen[key.value] = line
            problems.extend(_duplicate_keys(value, [*path, key.value], source, visited))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, [*path, index], source, visited))
    return problems
