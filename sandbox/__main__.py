"""`python -m sandbox run|push|demo`: the local stack's commands (see run.py, push.py, demo.py)."""

from __future__ import annotations

import sys

USAGE = "usage: python -m sandbox {run,push,demo} [options]   (each takes --help)"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "push", "demo"):
        print(USAGE, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from sandbox.run import main as run
        return run(rest)
    if command == "push":
        from sandbox.push import main as push
        return push(rest)
    from sandbox.demo import main as demo
    return demo(rest)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
