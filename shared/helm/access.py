"""How Helm reaches an environment's cluster: a fresh SDK `Config` for every action.

A `Config` kept after a timed-out action slowed later calls to client-go's default 5
requests/s (../shared/notes/helm.md), so none is reused; each has explicit `qps` and
`burst_limit`. The kubeconfig is a secret's value and stays in memory (the SDK writes it
to a private temp file it removes on close); AKS uses the app's Entra token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import helm_python

from shared.cluster.connection import AKS_SCOPE, AksServer, TokenRefresher, ca_file
from shared.cluster.errors import InvalidTarget
from shared.secrets.sources import for_spec

QPS = 50.0
BURST = 100
_aks: dict[tuple[str, str], tuple[TokenRefresher, str]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class HelmAccess:
    """One namespace of one cluster, as Helm reaches it (kubeconfig text, or AKS + token)."""

    cluster: str
    namespace: str
    kubeconfig: str | None = field(default=None, repr=False)
    server: str | None = None
    ca_path: str | None = None
    token: Callable[[], str] | None = field(default=None, repr=False)

    @contextmanager
    def config(self) -> Iterator[helm_python.Config]:
        """A new SDK `Config` for one action, closed after it."""
        if self.kubeconfig is not None:
            made = helm_python.Config(kubeconfig_content=self.kubeconfig,
                                      namespace=self.namespace, qps=QPS, burst_limit=BURST)
        else:
            assert self.token is not None and self.server is not None
            made = helm_python.Config(kube_apiserver=self.server, kube_token=self.token(),
                                      kube_ca_file=self.ca_path, namespace=self.namespace,
                                      qps=QPS, burst_limit=BURST)
        with made:
            yield made


def helm_access(connection: Mapping[str, Any], secrets: Mapping[str, Any],
                namespace: str) -> HelmAccess:
    """The access an environment's connection spec gives (kubeconfig secret, or AKS)."""
    name = connection.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidTarget("cluster connection needs a name")
    if connection.get("kubeconfigSecret"):
        text = for_spec(secrets).get(str(connection["kubeconfigSecret"]))
        return HelmAccess(name, namespace, kubeconfig=text)
    if connection.get("aks"):
        refresher, ca = _aks_token(name, connection["aks"])
        server = AksServer.from_dict(connection["aks"]).server
        return HelmAccess(name, namespace, server=server, ca_path=ca, token=refresher.token)
    raise InvalidTarget(f"cluster {name!r} needs exactly one of kubeconfigSecret or aks")


def forget_kubeconfig(connection: Mapping[str, Any], secrets: Mapping[str, Any]) -> bool:
    """Drop the cached kubeconfig secret (the cluster refused it: it may have been rotated);
    True when there was one to drop."""
    secret = connection.get("kubeconfigSecret")
    if not secret:
        return False
    for_spec(secrets).invalidate(str(secret))
    return True


def _aks_token(name: str, aks: Mapping[str, Any]) -> tuple[TokenRefresher, str]:
    server = AksServer.from_dict(dict(aks))
    key = (name, server.server)
    with _lock:
        if key not in _aks:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(
                managed_identity_client_id=aks.get("managedIdentityClientId"))
            _aks[key] = (TokenRefresher(credential, AKS_SCOPE), ca_file(server.ca_data))
        return _aks[key]
