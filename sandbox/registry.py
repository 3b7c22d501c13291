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
from pathlib import Path

from sandbox.tls import TlsFiles
from sandbox.tools import ChildServer, free_port, private_dir, private_log, require_tool

START_TIMEOUT = 15.0
STOP_GRACE = 5.0
# What distribution 2.8 logs at info for each notification endpoint, headers included.
LOGGED_HEADERS = re.compile(rb"headers=map\[[^\"\n]*\]")


class RegistryError(RuntimeError):
    """The local registry did not start or answer."""


class LocalRegistry(ChildServer):
    """`docker-registry serve` as a subprocess on 127.0.0.1, started and stopped by the caller."""

    name = "registry"
    failure = RegistryError
    start_timeout = START_TIMEOUT
    stop_grace = STOP_GRACE

    def __init__(
        self,
        data_dir: Path,
        tls: TlsFiles,
        port: int = 0,
        notify_url: str | None = None,
        notify_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(data_dir, port)
        self.tls = tls
        self.notify_url = notify_url
        self.notify_headers = dict(notify_headers or {})

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
        self.launch([binary, "serve", str(self.config_path)], self._answers, self.host)
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this registry's certificate."""
        return ssl.create_default_context(cafile=str(self.tls.ca))

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

    def _answers(self) -> str | None:
        """None once `GET /v2/` answers 200 over TLS, else why not."""
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=0.5,
                                                 context=self.ssl_context())
        try:
            connection.request("GET", "/v2/")
            status = connection.getresponse().status
            return None if status == 200 else f"GET /v2/ answered {status}"
        except (OSError, http.client.HTTPException) as error:
            return str(error) or type(error).__name__
        finally:
            connection.close()
