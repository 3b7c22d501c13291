"""Promotion into a separate Azure Container Registry with ACR ImportImage.

ACR copies the image server-side (no bytes through this process), by digest,
in `NoForce` mode; a conflict is resolved by comparing digests: the same digest
is success, another is a TagConflict. For registries that are not ACR,
`promotion.promote` streams the blobs instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.models import ImportImageParameters, ImportSource

from .client import RegistryClient
from .errors import RegistryRequestError, RegistryUnavailable
from .promotion import PromotionResult, conflict, prepare, verify_landed


@dataclass(frozen=True)
class AcrImportTarget:
    """The production registry as an Azure resource, and where its source lives."""

    subscription_id: str
    resource_group: str
    registry_name: str
    source_resource_id: str | None = None
    arm_endpoint: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcrImportTarget:
        required = ("subscriptionId", "resourceGroup", "registryName")
        missing = [key for key in required if not data.get(key)]
        if missing:
            raise ValueError(f"acrImport needs {', '.join(missing)}")
        return cls(data["subscriptionId"], data["resourceGroup"], data["registryName"],
                   data.get("sourceResourceId"), data.get("armEndpoint"))


def management_client(target: AcrImportTarget, credential: Any,
                      **transport: Any) -> ContainerRegistryManagementClient:
    """An ARM client for the target registry's subscription (public cloud unless told)."""
    if target.arm_endpoint:
        transport.setdefault("credential_scopes", [target.arm_endpoint.rstrip("/") + "/.default"])
    return ContainerRegistryManagementClient(credential, target.subscription_id,
                                             base_url=target.arm_endpoint, **transport)


def import_image(arm: ContainerRegistryManagementClient, target: AcrImportTarget,
                 source: RegistryClient, source_repository: str, digest: str,
                 destination: RegistryClient, target_repository: str, tag: str, *,
                 allow_overwrite: bool = False, polling_interval: float = 2.0) -> PromotionResult:
    """Ask ACR to import `source_repository@digest` as `target_repository:tag`; verify after."""
    top, result = prepare(source, source_repository, digest, destination, target_repository, tag,
                          allow_overwrite=allow_overwrite)
    if result.unchanged:
        return result
    image_source = ImportSource(source_image=f"{source_repository}@{digest}",
                                resource_id=target.source_resource_id,
                                registry_uri=None if target.source_resource_id
                                else source.endpoint.host)
    parameters = ImportImageParameters(source=image_source,
                                       target_tags=[f"{target_repository}:{tag}"],
                                       mode="Force" if allow_overwrite else "NoForce")
    host = destination.endpoint.host
    try:
        arm.registries.begin_import_image(target.resource_group, target.registry_name,
                                          parameters, polling_interval=polling_interval).result()
    except HttpResponseError as refused:
        landed = destination.manifest_digest(target_repository, tag)
        if landed == digest:  # a NoForce conflict with the very same image: already promoted
            result.unchanged = True
            return result
        if landed is not None:
            raise conflict(destination, target_repository, tag, landed, digest) from refused
        raise RegistryRequestError(host, target_repository, tag,
                                   f"ACR import failed: {refused.message}") from refused
    except AzureError as failed:
        raise RegistryUnavailable(host, target_repository, tag,
                                  f"ACR import did not finish: {failed.message}") from failed

    verify_landed(destination, target_repository, tag, digest)
    result.manifests_written = len(top.children) + 1
    return result

