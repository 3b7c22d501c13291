"""Approval page addresses. Pure: the page's GET shows the decision, only its POST decides."""

from __future__ import annotations

from urllib.parse import quote


def page_path(release_id: str, environment: str) -> str:
    """`/api/releases/{releaseId}/approvals/{environment}`, each part quoted."""
    return (f"/api/releases/{quote(release_id, safe='')}"
            f"/approvals/{quote(environment, safe='')}")


def page_url(base: str, release_id: str, environment: str, token: str) -> str:
    """The approval page of one gate with its signed token."""
    return f"{base.rstrip('/')}{page_path(release_id, environment)}?token={quote(token, safe='')}"
