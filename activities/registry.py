"""`resolve_image` and `promote_image`: thin activities over the registry adapter."""

from __future__ import annotations

from typing import Any

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.registry import registries
from shared.registry.acr_import import import_image
from shared.registry.promotion import promote
from shared.registry.requests import PromotionRequest, ResolveRequest

bp = blueprint()


@bp.activity_trigger(input_name="request")
@marks_failures
def resolve_image(request: dict[str, Any]) -> dict[str, Any]:
    """The digest, media type and platforms that `image` (repo:tag or repo@digest) names now."""
    req = ResolveRequest.from_dict(request)
    manifest = registries.for_endpoint(req.registry).manifest(req.image.repository,
                                                              req.image.reference)
    return {"registry": req.registry.host, "repository": req.image.repository,
            "reference": req.image.reference, "digest": manifest.digest,
            "mediaType": manifest.media_type, "platforms": manifest.platforms}


@bp.activity_trigger(input_name="request")
@marks_failures
def promote_image(request: dict[str, Any]) -> dict[str, Any]:
    """Promote `source` (repo@digest) to `target` (repo:tag); see shared.registry.promotion."""
    req = PromotionRequest.from_dict(request)
    source = registries.for_endpoint(req.registry)
    target = registries.for_endpoint(req.target_registry) if req.target_registry else source
    if req.acr_import:
        result = import_image(registries.arm_client_for(req.acr_import), req.acr_import,
                              source, req.source.repository, req.source.reference, target,
                              req.target.repository, req.target.reference,
                              allow_overwrite=req.allow_overwrite)
    else:
        result = promote(source, req.source.repository, req.source.reference,
                         req.target.repository, req.target.reference, target=target,
                         allow_overwrite=req.allow_overwrite)
    return result.to_dict()
