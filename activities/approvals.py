"""Approval gate activities: check the settings before a release starts, open a gate (sign
links, post the card), check a decision, notify.

`request_approval` fails only when links cannot be signed (settings); Teams posts never fail
a release: a failed post comes back as a `notice`. It also reads what the release changes
(image labels, the ledger: shared/releases/changes.py), which never fails it either.
`check_approval` records every use of a link in the approval book and says whether it counts
(an approver, not the pusher, not used before). The orchestration does the counting: see
shared/approvals/gate.Tally.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.app_context import app_ledger
from shared.approvals import keys, teams
from shared.approvals.gate import judge
from shared.approvals.requests import gate_links, release_card
from shared.approvals.teams_webhook import post_message
from shared.ledger import LedgerError
from shared.ledger.approvals import ApprovalBook, ApprovalUse, use_key
from shared.ledger.changes import ChangesBook, releases_since
from shared.policy.model import Gate
from shared.registry import registries
from shared.registry.client import QUICK_RETRY, RegistryEndpoint
from shared.releases.changes import what_changes
from shared.secrets.sources import for_spec

bp = blueprint()
log = logging.getLogger(__name__)
COMMENT_LIMIT = 500


@bp.activity_trigger(input_name="request")
@marks_failures
def check_approval_settings(request: dict[str, Any]) -> dict[str, Any]:
    """What keeps the release's gates (`{"service", "gates": {env: gate}}`) from opening or
    deciding: `{"problems": [one line each, naming the setting, never its value]}`."""
    gates = {f"{request['service']}/{environment}": Gate.from_dict(gate)
             for environment, gate in request["gates"].items()}
    return {"problems": [problem.message for problem in keys.problems(gates=gates)]}


@bp.activity_trigger(input_name="request")
@marks_failures
def request_approval(request: dict[str, Any]) -> dict[str, Any]:
    """Sign this gate's links and post the approval card; the links whatever the post did."""
    gate = Gate.from_dict(request["gate"])
    links = gate_links(keys.app_keyring(), keys.base_url(), keys.identity_mode(), request, gate)
    changes = gate_changes(request)
    if changes is not None:  # the reminder and outcome cards get them with the links
        links["changes"] = changes
    card = teams.approval_request_card(release_card(request, links))
    return {**links, **send(request, card, gate)}


def gate_changes(request: dict[str, Any]) -> dict[str, Any] | None:
    """What the release changes where its gate opens (registry labels, ledger), kept in the
    changes book for the pages; None when the request names no image. Never raises."""
    image = request.get("image")
    if not isinstance(image, dict):  # a request built before the changes were read
        return None
    release_id, environment = request["releaseId"], request["environment"]
    try:
        registry = registries.for_endpoint(RegistryEndpoint.from_dict(image["registry"]),
                                           QUICK_RETRY)
        ledger = app_ledger()
        changes = what_changes(registry, str(image["repository"]), ledger,
                               partial(releases_since, ledger), service=request["service"],
                               release_id=release_id, digest=request["digest"],
                               environment=environment).to_dict()
    except Exception as error:  # what a release changes is never worth the release
        log.warning("changes of %s in %s not read: %s", release_id, environment, error)
        return None
    try:
        ChangesBook.beside(app_ledger()).record(release_id, environment, changes)
    except LedgerError as error:
        log.warning("changes of %s in %s not kept: %s", release_id, environment, error)
    return changes


@bp.activity_trigger(input_name="request")
@marks_failures
def notify_gate(request: dict[str, Any]) -> dict[str, Any]:
    """Post a gate's `reminder`, `outcome` or `paused` (failed deployment) card; failures
    come back as a notice."""
    try:
        gate = Gate.from_dict(request["gate"]) if request.get("gate") else None
        card = release_card(request, request["links"])
        if request["kind"] == "reminder":
            message = teams.reminder_card(card, request["number"],
                                          request.get("escalatedTo"), total=request["total"])
        elif request["kind"] == "paused":
            message = teams.paused_card(card, request["releaseId"], request["failure"],
                                        datetime.fromisoformat(request["pauseDeadline"]),
                                        request["onDeadline"])
        else:
            message = teams.outcome_card(card, request["outcome"], request.get("by"),
                                         request.get("reason"))
    except (KeyError, ValueError) as error:
        return {"notified": False, "notice": f"card not built: {error}"}
    return send(request, message, gate)


@bp.activity_trigger(input_name="request")
@marks_failures
def check_approval(request: dict[str, Any]) -> dict[str, Any]:
    """Record one decision and say whether it counts; a repeat answers "already decided"."""
    decision = request.get("decision") or {}
    problem = malformed(decision)
    if problem:
        return {"counted": False, "reason": f"decision not taken: {problem}"}
    allowed, why = judge(Gate.from_dict(request["gate"]), decision, request.get("pushedBy"),
                         request["environment"])
    identity = decision["identities"][0].strip().casefold()
    comment = (decision.get("comment") or "").strip()[:COMMENT_LIMIT] or None
    use = ApprovalUse(use_key=use_key(decision["nonce"], identity), event_id=decision["eventId"],
                      decision=decision["decision"], by=decision["approver"],
                      at=_moment(decision.get("at")), comment=comment, counted=allowed,
                      reason=why)
    stored = ApprovalBook.beside(app_ledger()).insert(request["releaseId"],
                                                     request["environment"], use)
    if stored.event_id != use.event_id:
        return {"counted": False, "duplicate": True, "by": stored.by,
                "reason": f"already decided by {stored.by} at {stored.at.isoformat()}"}
    return {"counted": stored.counted, "decision": stored.decision, "by": stored.by,
            "identity": identity, "at": stored.at.isoformat(), "comment": stored.comment,
            "reason": stored.reason or why}


def send(request: dict[str, Any], message: dict[str, Any], gate: Gate | None) -> dict[str, Any]:
    """Post to the gate's Teams webhook, if it has one; never raises."""
    secret = gate.teams_webhook_secret if gate else None
    if not secret:
        return {"notified": False, "notice": None}
    try:
        source = for_spec(request.get("secrets") or {})
        webhook = f"secret {secret!r} of {source.description}"
        post_message(source.get(secret), teams.encode_message(message), webhook)
    except Exception as error:  # a card is never worth a release
        log.warning("approval card for %s in %s not posted: %s", request.get("releaseId"),
                    request.get("environment"), error)
        return {"notified": False, "notice": f"Teams card not posted: {error}"}
    return {"notified": True, "notice": None}


def malformed(decision: Any) -> str | None:
    """Why a decision event cannot be taken, or None."""
    if not isinstance(decision, dict):
        return "expected an object"
    if decision.get("decision") not in ("approve", "reject"):
        return "decision must be approve or reject"
    for name in ("eventId", "nonce", "approver"):
        if not isinstance(decision.get(name), str) or not decision[name].strip():
            return f"{name} is missing"
    identities = decision.get("identities")
    if not isinstance(identities, list) or not identities \
            or not all(isinstance(i, str) and i.strip() for i in identities):
        return "identities must be a non-empty list of names"
    return None


def _moment(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
