"""`make run`: the app in devhost with the storage it needs (Azurite), on embedded defaults.

Starts Azurite (state under DATA_DIR/azurite; ports 10000-10002 when free, so
`UseDevelopmentStorage=true` works, else free ones), sets the app settings the
app reads unless they are already set, and serves the app until Ctrl-C, which
stops everything. The webhook token is generated once per data directory and
printed, so the local webhook can be called.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import socket
from pathlib import Path

from devhost.host import Host
from sandbox.azurite import Azurite

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = (10000, 10001, 10002)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.run", description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--data-dir", type=Path, default=REPO / ".devhost")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data = args.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    ports = DEFAULT_PORTS if all(_free(p) for p in DEFAULT_PORTS) else (0, 0, 0)
    with Azurite(data / "azurite", *ports) as azurite:
        os.environ.setdefault("AzureWebJobsStorage", azurite.connection_string)
        os.environ.setdefault("REGISTRY_WEBHOOK_TOKEN", _token(data))
        asyncio.run(_serve(args.port, data / "devhost"))
    return 0


async def _serve(port: int, data_dir: Path) -> None:
    host = Host(REPO, port=port, data_dir=data_dir)
    await host.start()
    print(f"\n  app:      {host.base_url}/api/health\n"
          f"  webhook:  POST {host.base_url}/api/registry/events\n"
          f"            Authorization: Bearer {os.environ['REGISTRY_WEBHOOK_TOKEN']}\n"
          "  Ctrl-C stops the app and Azurite.\n", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await host.stop()


def _token(data: Path) -> str:
    """The local webhook token, made once per data directory (not a production secret)."""
    path = data / "webhook-token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
