"""`hello_sequence`: the smoke orchestration that checks the durable engine end to end.

Calls the `say_hello` activity once per name, one after another, and returns
the greetings. Input: null (three default names) or a non-empty list of names.
It carries no release logic.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from blueprints import blueprint
from orchestrations.context import OrchestrationContext

bp = blueprint()

DEFAULT_NAMES: tuple[str, ...] = ("Tokyo", "Seattle", "London")


@bp.orchestration_trigger(context_name="context")
def hello_sequence(context: OrchestrationContext) -> Generator[Any, Any, list[str]]:
    """Greet each name in turn through `say_hello`; return the list of greetings."""
    greetings: list[str] = []
    for name in names_from_input(context.get_input()):
        greetings.append((yield context.call_activity("say_hello", name)))
    return greetings


def names_from_input(value: object) -> list[str]:
    """The names to greet: the defaults for None, else a non-empty list of strings.

    Raises ValueError with a one-line reason for any other input.
    """
    if value is None:
        return list(DEFAULT_NAMES)
    if isinstance(value, list) and value and all(isinstance(n, str) for n in value):
        return list(value)
    raise ValueError("hello_sequence input must be null or a non-empty list of names")
