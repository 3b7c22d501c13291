"""HTML for the dashboard's views: Jinja2 templates, autoescaped, no JavaScript.

Pages refresh themselves with `<meta http-equiv="refresh">` when the view's `refresh` is
above zero. Does not build views (see `view.py`) and sets no HTTP headers.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from shared.timefmt import as_utc

from .pipeline import Pipeline
from .view import Overview, ReleaseDetail

TEMPLATES = Path(__file__).resolve().parent / "templates"
STYLESHEET = (TEMPLATES / "dashboard.css").read_text(encoding="utf-8")


def style_source() -> str:
    """The CSP source that allows exactly the pages' inline stylesheet (and no other)."""
    digest = hashlib.sha256(STYLESHEET.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@cache
def environment() -> jinja2.Environment:
    """The template environment: autoescaping everywhere, undefined names are errors."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["utc"] = utc
    env.globals["stylesheet"] = Markup(STYLESHEET)  # our own file, not user input
    return env


def utc(value: datetime | str | None) -> str:
    """`2026-11-22 06:00:05 UTC`, or an empty string."""
    at = as_utc(value)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else ""


def render_overview(view: Overview) -> str:
    return environment().get_template("overview.html.j2").render(view=view)


def render_release(view: ReleaseDetail) -> str:
    return environment().get_template("release.html.j2").render(view=view)


def render_pipeline(view: Pipeline) -> str:
    return environment().get_template("pipeline.html.j2").render(view=view)


def render_message(title: str, message: str, *, refresh: int = 0) -> str:
    """A page that only says something (a bad query, an unknown release)."""
    return environment().get_template("message.html.j2").render(
        title=title, message=message, refresh=refresh)
