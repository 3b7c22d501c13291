"""`say_hello`: the activity of the smoke orchestration `hello_sequence`."""

from __future__ import annotations

from activities.boundary import marks_failures
from blueprints import blueprint

bp = blueprint()


@bp.activity_trigger(input_name="name")
@marks_failures
def say_hello(name: str) -> str:
    """Return a greeting for `name`."""
    return f"Hello {name}!"
