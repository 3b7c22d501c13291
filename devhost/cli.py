"""`python -m devhost start`: serve a Function App until SIGINT or SIGTERM.

Runs from any folder: like the Functions host starting its worker, devhost works in
the app directory (relative paths in app settings resolve against it) and imports
the app from there. Logs go to stderr at `--log-level`; the Azure SDKs' loggers
(`azure.*`, which log every HTTP request with its headers at info) stay at warning
unless the level is debug. Exit codes: 0 after a clean stop, 1 when the app cannot
start (an import error prints its traceback), 2 for bad arguments or a directory
without function_app.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from devhost.app_loader import AppImportError, AppLoadError
from devhost.host import Host

log = logging.getLogger("devhost")
LOG_LEVELS = ("debug", "info", "warning", "error")
SDK_LOGGERS = "azure"  # the Azure SDKs and the Functions libraries


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="devhost", description="Offline Azure Functions host for "
                                                 "Python v2-model apps.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    start = commands.add_parser("start", help="serve a Function App")
    start.add_argument("--app-dir", type=Path, default=Path("."),
                       help="directory holding function_app.py (default: .)")
    start.add_argument("--port", type=int, default=7071, help="TCP port, 0 for any (7071)")
    start.add_argument("--data-dir", type=Path, default=None,
                       help="durable task hub and timer state (default: APP_DIR/.devhost)")
    start.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    start.add_argument("--log-level", default="info", type=str.lower, choices=LOG_LEVELS,
                       help="info: devhost, invocations and the app's own logs; debug adds "
                            "the Azure SDKs' HTTP requests (default: info)")
    return parser


def configure_logging(level: str) -> None:
    """Log to stderr at `level`; the Azure SDKs' loggers stay at warning or above unless debug."""
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(level=numeric, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger(SDK_LOGGERS).setLevel(
        logging.NOTSET if numeric <= logging.DEBUG else max(numeric, logging.WARNING))


async def serve(host: Host) -> None:
    """Start `host`, wait for SIGINT/SIGTERM, stop it."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await host.start()
        await stopping.wait()
        log.info("devhost stopping")
    finally:
        await host.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    app_dir = args.app_dir.resolve()
    if not (app_dir / "function_app.py").is_file():
        parser.error(f"{app_dir / 'function_app.py'} not found: --app-dir must be a "
                     "Python v2 Function App directory")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is out of range 0-65535")
    sdk_logger = logging.getLogger(SDK_LOGGERS)
    sdk_level = sdk_logger.level  # restored on return: in-process callers keep their logging
    configure_logging(args.log_level)
    data_dir = args.data_dir.resolve() if args.data_dir else None  # against the caller's folder
    host = Host(app_dir, port=args.port, data_dir=data_dir, host=args.host)
    caller_dir = os.getcwd()
    os.chdir(app_dir)  # the Functions host starts its worker in the app's folder
    try:
        asyncio.run(serve(host))
    except AppImportError as error:
        cause = error.__cause__ or error
        sys.stderr.write("".join(traceback.format_exception(cause)))
        sys.stderr.write(f"devhost: {error}\n")
        return 1
    except (AppLoadError, ValueError, OSError, RuntimeError) as error:
        sys.stderr.write(f"devhost: cannot start: {error}\n")
        return 1
    finally:
        os.chdir(caller_dir)
        sdk_logger.setLevel(sdk_level)
    return 0
