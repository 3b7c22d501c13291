"""API clients for a cluster: from kubeconfig text, or AKS with a refreshed Entra token.

The kubeconfig arrives as a secret's value and is only ever held in memory (its
CA and client certificates are written to private temp files by the client
library). For AKS the token comes from `azure-identity` for the AKS server
application and is renewed before it expires, on the request that needs it.
"""

from __future__ import annotations

import base64
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client, config

from .errors import InvalidTarget

AKS_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
REFRESH_MARGIN_SECONDS = 300


@dataclass(frozen=True)
class AksServer:
    """An AKS API server reached with an Entra token (AKS-managed Entra ID)."""

    server: str
    ca_data: str  # base64 PEM, as in a kubeconfig's certificate-authority-data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AksServer:
        server, ca = data.get("server"), data.get("caData")
        if not isinstance(server, str) or not server.startswith("https://"):
            raise InvalidTarget("aks.server must be the API server's https:// URL")
        if not isinstance(ca, str) or not ca:
            raise InvalidTarget("aks.caData must be the base64 PEM of the cluster CA")
        return cls(server.rstrip("/"), ca)


def from_kubeconfig(text: str, context: str | None = None) -> client.ApiClient:
    """An API client for the kubeconfig's current (or named) context."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as bad:
        raise InvalidTarget(f"kubeconfig is not valid YAML (line {_line(bad)})") from None
    if not isinstance(document, dict) or not document.get("clusters"):
        raise InvalidTarget("kubeconfig has no clusters")
    try:
        # kubernetes ships py.typed but leaves this function unannotated
        api: client.ApiClient = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
            document, context=context)
        return api
    except config.ConfigException as bad:
        raise InvalidTarget(f"kubeconfig cannot be used: {bad}") from None


def for_aks(server: AksServer, credential: Any) -> client.ApiClient:
    """An API client for AKS whose bearer token is refreshed before it expires."""
    configuration = client.Configuration(host=server.server)
    configuration.ssl_ca_cert = ca_file(server.ca_data)
    refresher = TokenRefresher(credential)
    configuration.api_key_prefix["authorization"] = "Bearer"
    # Configuration.__init__ sets the hook to None unannotated, so mypy infers the type None
    configuration.refresh_api_key_hook = refresher  # type: ignore[assignment]
    refresher(configuration)
    return client.ApiClient(configuration)


class TokenRefresher:
    """`refresh_api_key_hook`: fetch a new token when the current one is about to expire."""

    def __init__(self, credential: Any, scope: str = AKS_SCOPE,
                 margin: float = REFRESH_MARGIN_SECONDS) -> None:
        self._credential = credential
        self._scope = scope
        self._margin = margin
        self._expires_on = 0.0
        self._token = ""
        self._lock = threading.Lock()
        self.fetches = 0

    def __call__(self, configuration: client.Configuration) -> None:
        configuration.api_key["authorization"] = self.token()

    def token(self) -> str:
        """The current token, fetched anew when it is about to expire."""
        with self._lock:
            if time.time() >= self._expires_on - self._margin:
                fetched = self._credential.get_token(self._scope)
                self._token, self._expires_on = str(fetched.token), float(fetched.expires_on)
                self.fetches += 1
            return self._token


def ca_file(ca_data: str) -> str:
    """A private temp file holding the cluster CA of `ca_data` (base64 PEM)."""
    try:
        pem = base64.b64decode(ca_data, validate=True)
    except ValueError as bad:
        raise InvalidTarget("aks.caData is not base64") from bad
    handle = tempfile.NamedTemporaryFile("wb", prefix="aks-ca-", suffix=".crt", delete=False)
    with handle:
        handle.write(pem)
    return handle.name


def _line(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    return str(mark.line + 1) if mark is not None else "?"
