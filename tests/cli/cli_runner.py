"""Run `releasectl` in-process against an app URL and read what it printed."""

from __future__ import annotations

import io

from releasectl.cli import main


def ctl(*argv: str, url: str | None = None) -> tuple[int, str, str]:
    """Run releasectl in-process against `url` (via RELEASE_API_URL); (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    environ = {"RELEASE_API_URL": url} if url else {}
    code = main(list(argv), out=out, err=err, environ=environ)
    return code, out.getvalue(), err.getvalue()


def one_error_line(err: str) -> str:
    """The reason of the one `releasectl: error: …` line on standard error."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("releasectl: error: "), err
    return lines[0].removeprefix("releasectl: error: ")
