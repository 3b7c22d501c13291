"""The releases dashboard: what runs where, what waits for whom, what happened lately.

`view` turns ledger records, the policy's service list and Durable custom statuses into
plain view models (pure, no I/O, the clock passed in); `render` writes them as HTML with
autoescaped Jinja2 templates. Reading the ledger and Durable is the HTTP trigger's job
(`triggers/dashboard.py`). Nothing secret is ever in a view: only names, versions, digests,
times, reasons and approval page links.
"""

from .render import render_message, render_overview, render_release
from .view import (
    DEFAULT_REFRESH,
    DeployedView,
    EnvironmentCell,
    Overview,
    RecentRow,
    ReleaseDetail,
    ServiceRow,
    WaitingRow,
    build_overview,
    build_release_detail,
)

__all__ = [
    "DEFAULT_REFRESH", "DeployedView", "EnvironmentCell", "Overview", "RecentRow",
    "ReleaseDetail", "ServiceRow", "WaitingRow", "build_overview", "build_release_detail",
    "render_message", "render_overview", "render_release",
]
