"""Parsing of the registry activities' JSON requests: bad input names its field."""

import pytest

from shared.registry.client import RegistryEndpoint
from shared.registry.requests import PromotionRequest, ResolveRequest

DIGEST = "sha256:" + "b" * 64
LOCAL = {"url": "https://127.0.0.1:5000", "auth": "anonymous", "caBundle": "/tmp/ca.pem"}


def test_resolve_request() -> None:
    req = ResolveRequest.from_dict({"registry": LOCAL, "image": "delivery:v1"})
    assert req.registry == RegistryEndpoint("https://127.0.0.1:5000", "anonymous", "/tmp/ca.pem")
    assert (req.image.repository, req.image.reference) == ("delivery", "v1")


def test_endpoint_defaults_to_azure_auth_over_https() -> None:
    endpoint = RegistryEndpoint.from_dict({"url": "myacr.azurecr.io"})
    assert endpoint == RegistryEndpoint("https://myacr.azurecr.io", "azure")
    assert endpoint.host == "myacr.azurecr.io"
    assert RegistryEndpoint.from_dict(endpoint.to_dict()) == endpoint


def test_promotion_request_with_acr_import() -> None:
    req = PromotionRequest.from_dict({
        "registry": LOCAL, "source": f"delivery@{DIGEST}", "target": "prod/delivery:v1",
        "targetRegistry": {"url": "prodacr.azurecr.io"}, "allowOverwrite": True,
        "acrImport": {"subscriptionId": "s", "resourceGroup": "rg", "registryName": "prodacr"}})
    assert req.source.reference == DIGEST and req.target.reference == "v1"
    assert req.target_registry and req.target_registry.host == "prodacr.azurecr.io"
    assert req.acr_import and req.acr_import.registry_name == "prodacr"
    assert req.allow_overwrite is True


@pytest.mark.parametrize("change, reason", [
    ({"source": "delivery:v1"}, "source delivery:v1 must name a digest"),
    ({"target": f"prod/delivery@{DIGEST}"}, "must name a tag"),
    ({"target": "Prod/delivery:v1"}, "target: invalid repository name"),
    ({"source": 7}, "source must be an image name"),
    ({"registry": None}, "registry must be a JSON object"),
    ({"registry": {"url": "https://acr.io/path"}}, "must be a host"),
    ({"registry": {"url": "acr.io", "auth": "password"}}, "must be 'azure' or 'anonymous'"),
    ({"allowOverwrite": "yes"}, "allowOverwrite must be true or false"),
    ({"acrImport": {"subscriptionId": "s"}}, "acrImport needs resourceGroup, registryName"),
    ({"acrImport": {"subscriptionId": "s", "resourceGroup": "r", "registryName": "n"}},
     "acrImport needs targetRegistry"),
])
def test_bad_promotion_requests_name_the_field(change: dict, reason: str) -> None:
    request = {"registry": LOCAL, "source": f"delivery@{DIGEST}", "target": "prod/delivery:v1",
               **change}
    with pytest.raises(ValueError, match=reason):
        PromotionRequest.from_dict(request)


def test_a_request_must_be_an_object() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        PromotionRequest.from_dict(["delivery"])
