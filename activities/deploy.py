"""Deployment activities: snapshot, deploy, await rollout, verify, roll back.

Each parses its request, asks the target's implementation (chosen by its kind, see
shared/cluster/targets.py) and returns plain JSON; each is safe to retry (a deploy or
rollback already in place writes nothing). Names and JSON are what histories hold: keep them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.app_context import app_ledger
from shared.cluster.errors import InvalidTarget
from shared.cluster.requests import ClusterRequest
from shared.cluster.targets import HELM, KINDS
from shared.cluster.verification import check_results, run_checks

bp = blueprint()
MAX_WAIT_SECONDS = 60.0


@bp.activity_trigger(input_name="request")
@marks_failures
def snapshot_deployment(request: dict[str, Any]) -> dict[str, Any]:
    """What runs now in the target (image, revision, our annotations), as `restore` needs it.

    A Helm target restores the revision of the environment's last good release: a request
    naming `service` and `environment` is told that release, from the ledger."""
    req = ClusterRequest.from_dict(request)
    if KINDS.kind_of(req.target).name == HELM.name and "goodReleaseId" not in req.body \
            and isinstance(req.body.get("service"), str) \
            and isinstance(req.body.get("environment"), str):
        good = app_ledger().environment_state(req.body["service"],
                                              req.body["environment"]).last_good
        req = replace(req, body={**req.body, "goodReleaseId": good.release_id if good else None})
    return KINDS.open(req).snapshot().to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def deploy_image(request: dict[str, Any]) -> dict[str, Any]:
    """Point the target container at `image` (repo@sha256:…); no write when already there."""
    req = ClusterRequest.from_dict(request)
    target = KINDS.open(req)
    image, cause, release = req.text("image"), req.text("changeCause"), req.text("releaseId")
    return target.deploy(image, cause, release).to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def await_rollout(request: dict[str, Any]) -> dict[str, Any]:
    """Watch the rollout for at most `maxWaitSeconds`: complete, failed, or progressing."""
    req = ClusterRequest.from_dict(request)
    target = KINDS.open(req)
    deadline, wait = req.deadline(), req.seconds("maxWaitSeconds", MAX_WAIT_SECONDS)
    return target.await_ready(deadline, wait).to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def rollback_deployment(request: dict[str, Any]) -> dict[str, Any]:
    """Restore `snapshot` (as taken by snapshot_deployment) and watch the rollout briefly."""
    req = ClusterRequest.from_dict(request)
    target = KINDS.open(req)
    deadline, wait = req.deadline(), req.seconds("maxWaitSeconds", MAX_WAIT_SECONDS)
    result = target.restore(req.body.get("snapshot") or {}, req.body.get("changeCause"))
    restored = result.to_dict()
    # A target that knows nothing changed (a Helm release nothing was recorded for) says so.
    rollout = restored.pop("rollout", None) or target.await_ready(deadline, wait).to_dict()
    return {**restored, "rollout": rollout}


@bp.activity_trigger(input_name="request")
@marks_failures
def verify_release(request: dict[str, Any]) -> dict[str, Any]:
    """Run the environment's checks; header secrets are resolved there and nowhere else.

    Requests of Deployment targets name no target: their checks are HTTP checks, as the
    `deployment` kind runs them, answered as `{"passed", "verdicts"}` (what histories hold).
    A request that names its target (a Helm target) asks that target's kind and is answered
    with the whole `Evidence`."""
    if not isinstance(request, dict) or not isinstance(request.get("checks"), list):
        raise InvalidTarget("verify_release needs a list of checks")
    if "target" not in request:
        return check_results(run_checks(request["checks"], request.get("secrets")))
    req = ClusterRequest.from_dict(request)
    return KINDS.open(req).verify(request["checks"], req.secrets).to_dict()
