"""`python -m shared.policy check FILE [FILE…]`: validate policy files.

Prints `OK FILE (N services)` or the file's problems (one per line, `file:line: field:
message`). Exit status: 0 when every file is valid, 1 otherwise, 2 for usage errors.
Helm chart folders and values files are checked against the app root: `--app-root`, else
the nearest folder at or above the current one that holds function_app.py; the OK line
says which root was used, or that there was none, when a file names such paths.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .app_files import APP_MARKER, find_app_root
from .errors import PolicyError
from .loader import load_policy
from .model import Policy


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m shared.policy",
                                     description="Validate release policy files.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate policy files")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument("--app-root", type=Path, metavar="DIR",
                       help="the folder Helm chart folders and valuesFiles are relative to"
                            f" (default: the nearest folder holding {APP_MARKER})")
    args = parser.parse_args(argv)
    if args.app_root is not None and not args.app_root.is_dir():
        parser.error(f"--app-root {args.app_root} is not a folder")
    root = args.app_root.resolve() if args.app_root is not None else find_app_root(Path.cwd())
    status = 0
    for path in args.files:
        try:
            policy = load_policy(path, root)
        except PolicyError as invalid:
            print(invalid)
            status = 1
        else:
            count, note = len(policy.services), _files_note(policy, root)
            print(f"OK {path} ({count} service{'' if count == 1 else 's'}{note})")
    return status


def _files_note(policy: Policy, root: Path | None) -> str:
    """How the app's files were checked, when the policy names any."""
    if not any(environment.helm is not None and
               (not environment.helm.oci or environment.helm.values_files)
               for service in policy.services.values() for environment in service.environments):
        return ""
    if root is None:
        return (f"; chart folders and valuesFiles NOT checked: no {APP_MARKER} at or above"
                " the current folder, pass --app-root")
    return f"; chart folders and valuesFiles checked against {root}"


if __name__ == "__main__":
    sys.exit(main())
