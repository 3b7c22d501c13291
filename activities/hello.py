"""`say_hello`: the activity of the smoke orchestration `hello_sequence`."""

from __future__ import annotations

import azure.durable_functions as df

from activities.boundary import marks_failures

bp = df.Blueprint()


@bp.activity_trigger(input_name="name")
@marks_failures
def say_hello(name: str) -> str:
    """Return a greeting for `name`."""
    return f"Hello {name}!"
