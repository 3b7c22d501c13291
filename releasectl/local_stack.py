"""The app a local stack (`make run`) serves, from its `.devhost/stack.json`.

Searched in the current folder and its parents; the nearest file wins. It is honoured only
when it describes a stack that still runs (its process is alive), belongs to the user
running releasectl, and names a loopback http(s) URL: a file left by a killed stack, or one
planted in a shared parent folder, never decides where the function key goes. Reads no
secret (stack.json holds none).
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

FACTS_FILE = Path(".devhost") / "stack.json"
LOCAL_HOSTS = {"localhost"}


def stack_file(start: Path) -> Path | None:
    """The nearest `.devhost/stack.json` in `start` or one of its parents."""
    for folder in (start, *start.parents):
        candidate = folder / FACTS_FILE
        if candidate.is_file():
            return candidate
    return None


def running_stack_url(start: Path) -> str | None:
    """The app URL of the running stack found from `start`, or None (see the module doc)."""
    path = stack_file(start.resolve())
    if path is None:
        return None
    try:
        if path.stat().st_uid != os.getuid():
            return None
        facts = json.loads(path.read_text(encoding="utf-8"))
        url, pid = facts["app_url"], facts["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(url, str) or not _loopback_url(url):
        return None
    if isinstance(pid, bool) or not isinstance(pid, int) or not alive(pid):
        return None
    return url


def _loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or parts.username or parts.password:
            return False
        return host in LOCAL_HOSTS or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def alive(pid: int) -> bool:
    """Whether `pid` runs: a zombie (killed, not yet reaped by its parent) does not."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: trust kill
