"""`python -m shared.policy check FILE [FILE…]`: validate policy files.

Prints `OK FILE (N services)` or the file's problems (one per line, `file:line: field:
message`). Exit status: 0 when every file is valid, 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import PolicyError
from .loader import load_policy


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m shared.policy",
                                     description="Validate release policy files.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate policy files")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            policy = load_policy(path)
        except PolicyError as invalid:
            print(invalid)
            status = 1
        else:
            count = len(policy.services)
            print(f"OK {path} ({count} service{'' if count == 1 else 's'})")
    return status


if __name__ == "__main__":
    sys.exit(main())
