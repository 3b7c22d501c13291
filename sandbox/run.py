"""`make run`: the whole product on this machine until Ctrl-C (see stack.py for the parts).

Prints where the app, its dashboard and the releases API answer, the command that pushes a
new version, and each Teams card the app posts. SIGINT and SIGTERM stop every part; a part
that dies stops the rest (exit 1, with its log). `--fresh` wipes the data directory first.
Secrets (webhook token, signing key, cluster tokens) stay in files of the data directory
and are never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devhost.cli import LOG_LEVELS
from sandbox.azurite import AzuriteError
from sandbox.registry import RegistryError
from sandbox.stack import REPO, Ports, Stack, StackError, StackFacts, wipe
from sandbox.tools import ToolMissingError

DEFAULT_DATA_DIR = REPO / ".devhost"
WATCH_SECONDS = 1.0


class _Stopping(Exception):
    """SIGINT or SIGTERM arrived."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ports = Ports(app=args.port, registry=args.registry_port, kube=args.kube_port,
                  teams=args.teams_port, control=args.control_port,
                  prometheus=args.prometheus_port, blob=args.blob_port,
                  queue=args.queue_port, table=args.table_port)
    stack = Stack(args.data_dir, ports, print_card=lambda line: print(line, flush=True),
                  log_level=args.log_level)

    def stopping(signum: int, frame: FrameType | None) -> None:
        raise _Stopping(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, stopping)
    signal.signal(signal.SIGTERM, stopping)
    try:
        if args.fresh:
            wipe(args.data_dir)
        print(f"starting the local stack (data in {_shown(args.data_dir)}) …", flush=True)
        stack.start()
        assert stack.facts is not None
        for namespace in stack.removed:
            print(f"removed the delivery Deployment an older `make run` made in {namespace}: "
                  "Helm installs its own with the first release there", flush=True)
        if stack.chart is not None:
            print(stack.chart.line(), flush=True)
        if stack.web is not None:
            print(stack.web.line(), flush=True)
        print(banner(stack.facts, args.data_dir), flush=True)
        while not (dead := stack.dead_parts()):
            time.sleep(WATCH_SECONDS)
        print(f"make run: {', '.join(dead)} stopped unexpectedly; stopping the rest "
              f"(devhost log: {stack.facts.devhost_log})", file=sys.stderr, flush=True)
        return 1
    except (_Stopping, KeyboardInterrupt):
        print("stopping …", flush=True)
        return 0
    except (StackError, ToolMissingError, AzuriteError, RegistryError) as error:
        print(f"make run: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        print(f"stopped; state kept in {_shown(args.data_dir)}/ (make run FRESH=1 wipes it)",
              flush=True)


def banner(facts: StackFacts, data_dir: Path) -> str:
    """What a newcomer needs: where things answer and the command that pushes a version."""
    default = data_dir.resolve() == DEFAULT_DATA_DIR.resolve()
    make_extra = "" if default else f" DATA_DIR={_shown(data_dir)}"
    cli_extra = "" if default else f" --data-dir {_shown(data_dir)}"
    charts = ", ".join(f"oci://{facts.registry_host}/{service['chartRepository']}"
                       for service in facts.services.values() if service.get("chartRepository"))
    return f"""
  The release workflow runs locally; state in {_shown(data_dir)}/

  app         {facts.app_url}/api/health
  dashboard   {facts.dashboard_url}
  releases    {facts.app_url}/api/releases
  registry    {facts.registry_url}  (CA {_shown(Path(facts.ca_file))}; pushes notify the app)
  kubernetes  {facts.kube_url}  (simulator: namespaces qa, prod; Helm release delivery;
              Deployments and Services web, web-preview)
  chart       {charts}  (make push pushes it at each image version)
  prometheus  {facts.prometheus_url}  (scrapes the pods' stand-ins; the analyses ask it)
  teams       cards the app posts are printed below
  devhost log {_shown(Path(facts.devhost_log))}

  Push a new version (in a second terminal):
      make push SERVICE=delivery VERSION=1.0.1{make_extra}
  (or .venv/bin/python -m sandbox push delivery 1.0.1{cli_extra}; add --crash-in prod
  to make that version crash in production: Helm rolls production back; ERRORS=0.5, or
  --errors 0.5, makes half its requests fail: QA's error-rate analysis rolls it back).
  The second service, web, releases as a canary in QA (1, then 2 of 4 pods) and blue-green
  in production (slots web and web-green behind the Services web and web-preview):
      make push SERVICE=web VERSION=1.0.0{make_extra}
  (ERRORS=0.5 here: the canary is aborted at its first step, stable web untouched).
  A guided tour: make demo.
  Ctrl-C stops everything.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="where all state lives (default: .devhost)")
    parser.add_argument("--fresh", action="store_true", help="wipe the data directory first")
    parser.add_argument("--log-level", default="info", type=str.lower, choices=LOG_LEVELS,
                        help="the devhost log's level; debug adds the Azure SDKs' HTTP "
                             "requests (default: info)")
    ports = "; default: the last run's or the usual one if free, else any free port; 0: any"
    parser.add_argument("--port", type=int, help="the app's port (usually 7071)" + ports)
    parser.add_argument("--registry-port", type=int, help="the OCI registry's port" + ports)
    parser.add_argument("--kube-port", type=int, help="the Kubernetes simulator's port" + ports)
    parser.add_argument("--teams-port", type=int, help="the Teams sink's port" + ports)
    parser.add_argument("--control-port", type=int, help="the stack control port" + ports)
    parser.add_argument("--prometheus-port", type=int,
                        help="Prometheus's port (usually 9090)" + ports)
    for service, usual in (("blob", 10000), ("queue", 10001), ("table", 10002)):
        parser.add_argument(f"--{service}-port", type=int,
                            help=f"Azurite's {service} port (usually {usual})" + ports)
    return parser


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is inside it."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path(os.getcwd()).resolve())) or "."
    except ValueError:
        return str(resolved)


if __name__ == "__main__":
    raise SystemExit(main())
