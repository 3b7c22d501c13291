"""`releasectl` finds the running local stack from `.devhost/stack.json` when no URL is given.

Recording servers on loopback stand in for the app: the test sees which one each command
reached. `--url` wins, then RELEASE_API_URL, then the nearest stack.json of a stack that
still runs (the user's own, naming a loopback URL), then http://127.0.0.1:7071.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from releasectl.cli import main
from sandbox.threaded import ThreadedServer

REPO = Path(__file__).resolve().parents[2]


class Recorder(ThreadedServer):
    """Answers `[]` to every request and records its method and path."""

    thread_name = "releasectl-stack-recorder"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests.append((request.method, str(request.rel_url)))
        return web.json_response([])


@pytest.fixture
def stack_app() -> Iterator[Recorder]:
    with Recorder() as server:
        yield server


@pytest.fixture
def other_app() -> Iterator[Recorder]:
    with Recorder() as server:
        yield server


def write_facts(project: Path, app_url: str, pid: int) -> Path:
    """A `.devhost/stack.json` as `make run` writes it (only the fields releasectl reads)."""
    path = project / ".devhost" / "stack.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "app_url": app_url, "data_dir": str(path.parent)}))
    return path


def ctl_in(folder: Path, *argv: str, environ: dict[str, str] | None = None
           ) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, environ=environ or {}, cwd=folder)
    return code, out.getvalue(), err.getvalue()


def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_without_a_url_it_talks_to_the_stack_found_from_a_subfolder(
        tmp_path: Path, stack_app: Recorder) -> None:
    write_facts(tmp_path / "project", stack_app.url, os.getpid())
    deep = tmp_path / "project" / "docs" / "notes"
    deep.mkdir(parents=True)
    code, out, err = ctl_in(deep, "list", "--json")
    assert (code, out.strip(), err) == (0, "[]", "")
    assert stack_app.requests == [("GET", "/api/releases")]


def test_url_and_environment_win_over_the_stack(tmp_path: Path, stack_app: Recorder,
                                                other_app: Recorder) -> None:
    write_facts(tmp_path, stack_app.url, os.getpid())
    assert ctl_in(tmp_path, "list", environ={"RELEASE_API_URL": other_app.url})[0] == 0
    assert ctl_in(tmp_path, "list", "--url", other_app.url,
                  environ={"RELEASE_API_URL": "http://127.0.0.1:9"})[0] == 0
    assert len(other_app.requests) == 2 and stack_app.requests == []


def test_the_nearest_stack_file_wins(tmp_path: Path, stack_app: Recorder,
                                     other_app: Recorder) -> None:
    write_facts(tmp_path, other_app.url, os.getpid())
    write_facts(tmp_path / "project", stack_app.url, os.getpid())
    assert ctl_in(tmp_path / "project", "list")[0] == 0
    assert (len(stack_app.requests), len(other_app.requests)) == (1, 0)


@pytest.mark.parametrize("case", ["stopped stack", "killed, not reaped", "not loopback",
                                  "someone else's", "not JSON"])
def test_a_stack_file_that_cannot_be_trusted_is_ignored(tmp_path: Path, stack_app: Recorder,
                                                        case: str) -> None:
    path = write_facts(tmp_path, stack_app.url, os.getpid())
    zombie = None
    if case == "stopped stack":
        write_facts(tmp_path, stack_app.url, dead_pid())
    elif case == "killed, not reaped":
        zombie = subprocess.Popen([sys.executable, "-c", "pass"])
        while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)
        write_facts(tmp_path, stack_app.url, zombie.pid)
    elif case == "not loopback":
        write_facts(tmp_path, stack_app.url.replace("127.0.0.1", "192.0.2.7"), os.getpid())
    elif case == "someone else's":
        os.chown(path, 65534, 65534)  # the tests run as root: nobody's file
    else:
        path.write_text("{not json")
    code, _, err = ctl_in(tmp_path, "list", "--timeout", "2")
    if zombie is not None:
        zombie.wait()
    assert stack_app.requests == []
    assert code == 0 or "http://127.0.0.1:7071" in err  # the default, whatever answers there


def test_help_says_which_url_wins() -> None:
    result = subprocess.run([sys.executable, "-m", "releasectl", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert ("Which API: --url wins, then $RELEASE_API_URL, then the stack `make run` runs "
            "(the nearest .devhost/stack.json in this folder or a parent, while that stack "
            "runs), then http://127.0.0.1:7071.") in text
