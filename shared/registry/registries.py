"""One registry client per endpoint per process, as the Azure SDK recommends."""

from __future__ import annotations

from functools import lru_cache

from azure.mgmt.containerregistry import ContainerRegistryManagementClient

from .acr_import import AcrImportTarget, management_client
from .client import RegistryClient, RegistryEndpoint, RetrySettings


@lru_cache(maxsize=32)
def for_endpoint(endpoint: RegistryEndpoint, retry: RetrySettings | None = None
                 ) -> RegistryClient:
    """The cached client for `endpoint` and retry settings (credentials come from the
    process identity); the default retries suit activities, `QUICK_RETRY` a webhook."""
    return RegistryClient(endpoint, retry=retry)


@lru_cache(maxsize=8)
def arm_client_for(target: AcrImportTarget) -> ContainerRegistryManagementClient:
    """The cached ARM client for ACR ImportImage into `target`."""
    from azure.identity import DefaultAzureCredential

    return management_client(target, DefaultAzureCredential())
