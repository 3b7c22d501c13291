"""The links and card of one gate opening, from the plan's request. Pure apart from nonces.

In `appservice` mode one link names nobody (the signed-in person decides); in `token` mode
each user approver gets a personal link (groups cannot be told apart without a sign-in).
Every link expires at the gate's deadline and is bound to the release, environment and digest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.approvals.keys import IdentityMode, named_approvers
from shared.approvals.links import page_url
from shared.approvals.teams import ApprovalLinks, ReleaseCard, earlier_image
from shared.approvals.tokens import Keyring, issue, new_nonce
from shared.policy.model import Gate
from shared.releases.changes import ReleaseChanges


def gate_links(keyring: Keyring, base: str, mode: IdentityMode, request: Mapping[str, Any],
               gate: Gate, nonce: Callable[[], str] = new_nonce) -> dict[str, Any]:
    """`{"approvalPage": url | None, "approvalLinks": [{"approver", "url"}]}` for the gate
    (the request's, read by the caller)."""
    bound = {"release_id": request["releaseId"], "environment": request["environment"],
             "digest": request["digest"], "scope": "decide",
             "expires_at": datetime.fromisoformat(request["deadline"])}

    def url(approver: str | None) -> str:
        token = issue(keyring, **bound, nonce=nonce(), approver=approver)
        return page_url(base, request["releaseId"], request["environment"], token)

    if mode == "appservice":
        return {"approvalPage": url(None), "approvalLinks": []}
    users = named_approvers(request["environment"], gate)
    return {"approvalPage": None,
            "approvalLinks": [{"approver": user, "url": url(user)} for user in users]}


def release_card(request: Mapping[str, Any], links: Mapping[str, Any]) -> ReleaseCard:
    """What the cards of this gate say, with its links."""
    page = links.get("approvalPage") or links["approvalLinks"][0]["url"]
    return ReleaseCard(
        service=request["service"], version=request["version"], digest=request["digest"],
        environment=request["environment"],
        deadline=datetime.fromisoformat(request["deadline"]),
        links=ApprovalLinks(approve=f"{page}&decision=approve",
                            reject=f"{page}&decision=reject", details=page),
        pushed_by=request.get("pushedBy"), evidence=request.get("evidence"),
        reviewers=tuple((link["approver"], link["url"])
                        for link in links.get("approvalLinks") or ()),
        overwrites=earlier_image(request.get("overwrites")),
        tag_moved=request.get("tagMoved") is True,
        changes=ReleaseChanges.from_dict(links.get("changes")))
