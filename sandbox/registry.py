"""A local OCI registry: Debian's `docker-registry` (distribution 2.8) over TLS, no auth.

Stores images on the filesystem under `data_dir`, so a restart on the same port keeps them.
Optionally POSTs distribution's notification envelopes to one endpoint. Deletes are enabled.
The notification headers (a bearer token) stay out of its log: distribution logs each
endpoint's headers at level info, so it logs at warn (the access log stays), and lines an
older run logged are blanked at start. Its folder is 0700, its config and log 0600.
Does not do token auth or anything ACR-specific (`/acr/v1`, webhooks in ACR's format).
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import time
from pathlib import Path

from sandbox.tls import TlsFiles
from sandbox.tools import (
    Managed,
    free_port,
    log_tail,
    private_dir,
    private_log,
    require_tool,
    stop_process,
)

START_TIMEOUT = 15.0
STOP_GRACE = 5.0
LOG_TAIL_LINES = 20
# What distribution 2.8 logs at info for each notification endpoint, headers included.
LOGGED_HEADERS = re.compile(rb"headers=map\[[^\"\n]*\]")


class RegistryError(RuntimeError):
    """The local registry did not start or answer."""


class LocalRegistry(Managed):
    """`docker-registry serve` as a subprocess on 127.0.0.1, started and stopped by the caller."""

    def __init__(
        self,
        data_dir: Path,
        tls: TlsFiles,
        port: int = 0,
        notify_url: str | None = None,
        notify_headers: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.tls = tls
        self.port = port
        self.notify_url = notify_url
        self.notify_headers = dict(notify_headers or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, as used in image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """`https://127.0.0.1:PORT`."""
        return f"https://{self.host}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "config.yml"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "registry.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalRegistry:
        """Write the config, launch the registry and wait until `GET /v2/` answers over TLS."""
        if self.running:
            return self
        binary = require_tool("docker-registry", "docker-registry")
        private_dir(self.data_dir)
        if self.port == 0:
            self.port = free_port()
        self.config_path.touch(mode=0o600)
        self.config_path.chmod(0o600)
        self.config_path.write_text(json.dumps(self._config(), indent=2))
        self._blank_logged_headers()
        with private_log(self.log_path) as log:
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                [binary, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.data_dir, start_new_session=True,
            )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the registry (SIGTERM, then SIGKILL after a grace period)."""
        process, self._process = self._process, None
        stop_process(process, STOP_GRACE)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this registry's certificate."""
        return ssl.create_default_context(cafile=str(self.tls.ca))

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the registry logged since it was last started."""
        return log_tail(self.log_path, self._log_offset, lines)

    def _blank_logged_headers(self) -> None:
        """Replace the notification headers an older run logged with `[redacted]`."""
        try:
            text = self.log_path.read_bytes()
        except FileNotFoundError:
            return
        blanked = LOGGED_HEADERS.sub(b"headers=[redacted]", text)
        if blanked != text:
            with private_log(self.log_path) as log:
                log.truncate(0)
                log.write(blanked)

    def _config(self) -> dict[str, object]:
        config: dict[str, object] = {
            "version": 0.1,
            # warn, not info: at info the registry logs each notification endpoint's headers.
            "log": {"level": "warn", "fields": {"service": "registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.data_dir / "storage")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.host,
                "secret": "sandbox-not-a-secret",
                "tls": {"certificate": str(self.tls.cert), "key": str(self.tls.key)},
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        if self.notify_url:
            config["notifications"] = {"endpoints": [{
                "name": "sandbox",
                "url": self.notify_url,
                "headers": {name: [value] for name, value in self.notify_headers.items()},
                "timeout": "2s",
                "threshold": 5,
                "backoff": "1s",
            }]}
        return config

    def _wait_until_serving(self) -> None:
        assert self._process is not None
        context = self.ssl_context()
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise RegistryError(
                    f"docker-registry exited with code {code} before serving on {self.host} "
                    f"(config {self.config_path}); log tail:\n{self.log_tail()}"
                )
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=0.5, context=context
            )
            try:
                connection.request("GET", "/v2/")
                status = connection.getresponse().status
                if status == 200:
                    return
                last_error = f"GET /v2/ answered {status}"
            except (OSError, http.client.HTTPException) as error:
                last_error = str(error) or type(error).__name__
            finally:
                connection.close()
            time.sleep(0.05)
        raise RegistryError(
            f"docker-registry did not answer GET {self.endpoint}/v2/ within {START_TIMEOUT:.0f} s "
            f"({last_error}); log tail:\n{self.log_tail()}"
        )
