"""One API client per cluster connection per process, built from the environment's secrets.

A connection is `{"name", "kubeconfigSecret"}` (the kubeconfig is a secret of the
environment) or `{"name", "aks": {"server", "caData", "managedIdentityClientId"?}}`.
When the cluster rejects a cached kubeconfig (401), the secret is read once more
and the client rebuilt: the kubeconfig may have been rotated.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client

from shared.secrets.sources import for_spec

from .connection import AksServer, for_aks, from_kubeconfig
from .deployments import Deployments
from .errors import ClusterAuthError, InvalidTarget

T = TypeVar("T")
_clients: dict[tuple[str, str], client.ApiClient] = {}
_lock = threading.Lock()


def with_deployments(connection: Any, secrets: Any,
                     operation: Callable[[Deployments], T]) -> T:
    """Run `operation` on the cluster; on a 401 with a kubeconfig secret, refetch it once."""
    return with_api_client(connection, secrets, lambda api: operation(Deployments(api)))


def with_api_client(connection: Any, secrets: Any,
                    operation: Callable[[client.ApiClient], T]) -> T:
    """Run `operation` with the cluster's API client; when it raises ClusterAuthError (a 401)
    and the connection is a kubeconfig secret, refetch the secret and run it once more."""
    connection = _check(connection)
    try:
        return operation(_api_client(connection, secrets))
    except ClusterAuthError:
        secret = connection.get("kubeconfigSecret")
        if not secret:
            raise
        for_spec(secrets).invalidate(secret)
        forget(connection["name"])
        return operation(_api_client(connection, secrets))


def forget(cluster: str) -> None:
    """Drop the cached clients of a cluster (after rotated credentials)."""
    with _lock:
        for key in [k for k in _clients if k[0] == cluster]:
            _drop(key)


def _drop(key: tuple[str, str]) -> None:
    """Close and forget a cached client; the caller holds `_lock`."""
    # kubernetes ships py.typed but leaves ApiClient.close unannotated
    _clients.pop(key).close()  # type: ignore[no-untyped-call]


def _api_client(connection: dict[str, Any], secrets: Any) -> client.ApiClient:
    name = connection["name"]
    if connection.get("kubeconfigSecret"):
        text = for_spec(secrets).get(connection["kubeconfigSecret"])
        key = (name, hashlib.sha256(text.encode()).hexdigest())
        build: Callable[[], client.ApiClient] = lambda: from_kubeconfig(text)  # noqa: E731
    else:
        server = AksServer.from_dict(connection["aks"])
        key = (name, f"aks:{server.server}")

        def build() -> client.ApiClient:
            from azure.identity import DefaultAzureCredential

            identity = connection["aks"].get("managedIdentityClientId")
            return for_aks(server, DefaultAzureCredential(managed_identity_client_id=identity))
    with _lock:
        if key not in _clients:
            stale = [k for k in _clients if k[0] == name]
            for old in stale:
                _drop(old)
            _clients[key] = build()
        return _clients[key]


def _check(connection: Any) -> dict[str, Any]:
    if not isinstance(connection, dict) or not isinstance(connection.get("name"), str):
        raise InvalidTarget("cluster connection needs a name")
    kinds = [k for k in ("kubeconfigSecret", "aks") if connection.get(k)]
    if len(kinds) != 1:
        raise InvalidTarget(f"cluster {connection['name']!r} needs exactly one of"
                            " kubeconfigSecret or aks")
    return connection
