"""Deployment activities: snapshot, deploy, await rollout, verify, roll back.

Each parses its request, calls the cluster adapter and returns plain JSON; each
is safe to retry (a deploy or rollback already in place writes nothing).
"""

from __future__ import annotations

from typing import Any

from activities.boundary import marks_failures
from blueprints import blueprint
from shared.cluster.clusters import with_deployments
from shared.cluster.deployments import Deployments
from shared.cluster.errors import InvalidTarget
from shared.cluster.requests import ClusterRequest
from shared.cluster.rollout import Snapshot
from shared.cluster.verification import HttpCheck, run_check
from shared.secrets.sources import for_spec, parse_spec

bp = blueprint()
MAX_WAIT_SECONDS = 60.0


@bp.activity_trigger(input_name="request")
@marks_failures
def snapshot_deployment(request: dict[str, Any]) -> dict[str, Any]:
    """What runs now in the target: image, revision, replicas, our annotations."""
    req = ClusterRequest.from_dict(request)
    return with_deployments(req.connection, req.secrets,
                            lambda d: d.snapshot(req.target)).to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def deploy_image(request: dict[str, Any]) -> dict[str, Any]:
    """Point the target container at `image` (repo@sha256:…); no write when already there."""
    req = ClusterRequest.from_dict(request)
    image, cause, release = req.text("image"), req.text("changeCause"), req.text("releaseId")
    return with_deployments(req.connection, req.secrets,
                            lambda d: d.deploy(req.target, image, cause, release)).to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def await_rollout(request: dict[str, Any]) -> dict[str, Any]:
    """Watch the rollout for at most `maxWaitSeconds`: complete, failed, or progressing."""
    req = ClusterRequest.from_dict(request)
    deadline, wait = req.deadline(), req.seconds("maxWaitSeconds", MAX_WAIT_SECONDS)
    return with_deployments(
        req.connection, req.secrets,
        lambda d: d.await_rollout(req.target, deadline, max_wait=wait)).to_dict()


@bp.activity_trigger(input_name="request")
@marks_failures
def rollback_deployment(request: dict[str, Any]) -> dict[str, Any]:
    """Restore `snapshot` (as taken by snapshot_deployment) and watch the rollout briefly."""
    req = ClusterRequest.from_dict(request)
    snapshot = Snapshot.from_dict(req.body.get("snapshot") or {})
    if snapshot.container != req.target.container:
        raise InvalidTarget("snapshot is of another container than the target")
    deadline, wait = req.deadline(), req.seconds("maxWaitSeconds", MAX_WAIT_SECONDS)

    def roll_back(deployments: Deployments) -> dict[str, Any]:
        result = deployments.rollback(req.target, snapshot, req.body.get("changeCause"))
        status = deployments.await_rollout(req.target, deadline, max_wait=wait)
        return {**result.to_dict(), "rollout": status.to_dict()}

    return with_deployments(req.connection, req.secrets, roll_back)


@bp.activity_trigger(input_name="request")
@marks_failures
def verify_release(request: dict[str, Any]) -> dict[str, Any]:
    """Run the environment's HTTP checks; header secrets are resolved here and nowhere else."""
    if not isinstance(request, dict) or not isinstance(request.get("checks"), list):
        raise InvalidTarget("verify_release needs a list of checks")
    checks = [HttpCheck.from_dict(c) for c in request["checks"]]
    secrets = for_spec(parse_spec(request.get("secrets")))  # InvalidSecretSpec when unusable
    verdicts = [run_check(check, {header: secrets.get(name)
                                  for header, name in check.headers.items()})
                for check in checks]
    return {"passed": all(v.passed for v in verdicts),
            "verdicts": [v.to_dict() for v in verdicts]}
