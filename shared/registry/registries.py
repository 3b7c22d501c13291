"""One registry client per endpoint per process, as the Azure SDK recommends."""

from __future__ import annotations

from functools import lru_cache

from azure.mgmt.containerregistry import ContainerRegistryManagementClient

from .acr_import import AcrImportTarget, management_client
from .client import RegistryClient, RegistryEndpoint


@lru_cache(maxsize=32)
def for_endpoint(endpoint: RegistryEndpoint) -> RegistryClient:
    """The cached client for `endpoint` (credentials come from the process identity)."""
    return RegistryClient(endpoint)


@lru_cache(maxsize=8)
def arm_client_for(target: AcrImportTarget) -> ContainerRegistryManagementClient:
    """The cached ARM client for ACR ImportImage into `target`."""
    from azure.identity import DefaultAzureCredential

    return management_client(target, DefaultAzureCredential())
