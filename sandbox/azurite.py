"""Azurite, the Azure Storage emulator from npm, as a subprocess on 127.0.0.1.

Serves blob, queue and table for the well-known development account `devstoreaccount1`,
persisting to `data_dir` (`--location`), so a restart on the same ports keeps the data.
Telemetry is off (nothing leaves loopback). Does not do TLS, OAuth or `--inMemoryPersistence`.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import time
from pathlib import Path

from sandbox.tools import Managed, ToolMissingError, free_port, log_tail, require_tool, stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT_NAME = "devstoreaccount1"
# The documented development key that every Azurite accepts; not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START_TIMEOUT = 20.0
STOP_GRACE = 5.0
LOG_TAIL_LINES = 20
PORT_ATTEMPTS = 3
ADDRESS_IN_USE = re.compile(r"EADDRINUSE: address already in use [\d.]+:(\d+)")


class AzuriteError(RuntimeError):
    """Azurite did not start or answer."""


class Azurite(Managed):
    """`azurite` from the repo's node_modules, started and stopped by the caller."""

    def __init__(
        self,
        data_dir: Path,
        blob_port: int = 0,
        queue_port: int = 0,
        table_port: int = 0,
        binary: Path = AZURITE_BIN,
    ) -> None:
        """Ports of 0 are picked free at the first start and kept for restarts."""
        self.data_dir = data_dir
        self.blob_port = blob_port
        self.queue_port = queue_port
        self.table_port = table_port
        self.binary = binary
        # Which ports to pick; only until the first successful start (restarts keep them).
        self._pick = [port == 0 for port in (blob_port, queue_port, table_port)]
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def ports(self) -> tuple[int, int, int]:
        """(blob, queue, table)."""
        return self.blob_port, self.queue_port, self.table_port

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """The full account connection string with explicit endpoints on this instance's ports."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint}"
        )

    @property
    def log_path(self) -> Path:
        return self.data_dir / "azurite.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Azurite:
        """Launch Azurite and wait until blob, queue and table answer HTTP."""
        if self.running:
            return self
        if not self.binary.exists():
            raise ToolMissingError(
                "Azurite not found: run `npm install` in the repo (make test does); "
                f"looked for {self.binary}"
            )
        require_tool("node", "nodejs")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempt = 1
        while True:
            if any(self._pick):
                self._pick_ports()
            try:
                self._launch()
                self._wait_until_serving()
            except AzuriteError:
                self.stop()
                # Another process may have taken a port picked a moment ago: pick again.
                if attempt >= PORT_ATTEMPTS or not self._lost_picked_port():
                    raise
                attempt += 1
                continue
            except BaseException:
                self.stop()
                raise
            self._pick = [False, False, False]
            return self

    def stop(self) -> None:
        """Terminate Azurite (SIGTERM, which flushes its database, then SIGKILL after a grace)."""
        process, self._process = self._process, None
        stop_process(process, STOP_GRACE)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines Azurite printed since it was last started."""
        return log_tail(self.log_path, self._log_offset, lines)

    def _lost_picked_port(self) -> bool:
        """Whether Azurite exited because a port this instance picked was taken meanwhile."""
        busy = ADDRESS_IN_USE.search(self.log_tail())
        picked = {port for port, pick in zip(self.ports, self._pick, strict=True) if pick}
        return busy is not None and int(busy.group(1)) in picked

    def _pick_ports(self) -> None:
        ports = list(self.ports)
        for index, pick in enumerate(self._pick):
            if pick:
                port = free_port()
                while port in ports:
                    port = free_port()
                ports[index] = port
        self.blob_port, self.queue_port, self.table_port = ports

    def _launch(self) -> None:
        command = [
            str(self.binary), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
            "--location", str(self.data_dir),
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
        ]
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True,
            )

    def _wait_until_serving(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no answer yet"
        pending = [self.blob_port, self.queue_port, self.table_port]
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise AzuriteError(
                    f"Azurite exited with code {code} before serving on ports "
                    f"{self.blob_port}/{self.queue_port}/{self.table_port} "
                    f"(location {self.data_dir}); log tail:\n{self.log_tail()}"
                )
            while pending:
                error = _http_error(pending[0])
                if error is not None:
                    last_error = f"port {pending[0]}: {error}"
                    break
                pending.pop(0)
            if not pending:
                return
            time.sleep(0.05)
        raise AzuriteError(
            f"Azurite did not answer on {self.table_endpoint} within {START_TIMEOUT:.0f} s "
            f"({last_error}); log tail:\n{self.log_tail()}"
        )


def _http_error(port: int) -> str | None:
    """None if something answers HTTP on the port (any status), else why not."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        connection.request("GET", f"/{ACCOUNT_NAME}")
        connection.getresponse().read()
        return None
    except (OSError, http.client.HTTPException) as error:
        return str(error) or type(error).__name__
    finally:
        connection.close()

