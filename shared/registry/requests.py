"""The plain-JSON requests of the registry activities, parsed and checked.

Bad input raises ValueError naming the field, before any registry is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .acr_import import AcrImportTarget
from .client import RegistryEndpoint
from .errors import InvalidReference
from .references import ImageName, is_digest


@dataclass(frozen=True)
class ResolveRequest:
    """`{"registry": {...}, "image": "repo:tag"}`: which digest a tag points to."""

    registry: RegistryEndpoint
    image: ImageName

    @classmethod
    def from_dict(cls, data: Any) -> ResolveRequest:
        data = _object(data, "resolve request")
        return cls(_endpoint(data, "registry"), _image(data, "image"))


@dataclass(frozen=True)
class PromotionRequest:
    """`{"registry", "source": "repo@digest", "target": "prod/repo:tag", ...}`."""

    registry: RegistryEndpoint
    source: ImageName
    target: ImageName
    target_registry: RegistryEndpoint | None = None
    acr_import: AcrImportTarget | None = None
    allow_overwrite: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> PromotionRequest:
        data = _object(data, "promotion request")
        source, target = _image(data, "source"), _image(data, "target")
        if not is_digest(source.reference):
            raise ValueError(f"source {source} must name a digest (repo@sha256:…): promotion"
                             " moves exactly the approved image")
        if is_digest(target.reference):
            raise ValueError(f"target {target} must name a tag (repo:tag)")
        acr_import = None
        if data.get("acrImport") is not None:
            acr_import = AcrImportTarget.from_dict(_object(data["acrImport"], "acrImport"))
        target_registry = _endpoint(data, "targetRegistry") if data.get("targetRegistry") \
            else None
        if acr_import and target_registry is None:
            raise ValueError("acrImport needs targetRegistry (the registry ACR imports into)")
        allow = data.get("allowOverwrite", False)
        if not isinstance(allow, bool):
            raise ValueError("allowOverwrite must be true or false")
        return cls(_endpoint(data, "registry"), source, target, target_registry, acr_import,
                   allow)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value


def _endpoint(data: dict[str, Any], field: str) -> RegistryEndpoint:
    return RegistryEndpoint.from_dict(_object(data.get(field), field))


def _image(data: dict[str, Any], field: str) -> ImageName:
    value = data.get(field)
    if not isinstance(value, str):
        raise ValueError(f"{field} must be an image name such as repo:tag or repo@sha256:…")
    try:
        return ImageName.parse(value)
    except InvalidReference as bad:
        raise ValueError(f"{field}: {bad}") from bad
