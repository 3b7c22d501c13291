"""A release's plan: the image by digest and the ordered environments of its policy snapshot.

Built from the orchestration input only (never from the live policy), so replay
sees the same plan however the policy file changes. Each stage is the snapshot's environment
read once into the policy's own types (`shared.policy.Environment`, `Gate`, `Rollback`)
and written back with their `to_dict` where a request carries it (plain JSON).
Carries secret *names* and specs, never values.
The input also says which checks run before the first environment (`preflight`: inputs
written before a check existed do not name it, so their histories replay unchanged) and
the retries that started this run again (`retries`: who, when, why).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from shared.cluster.rollout import DIGEST, RELEASE_ID
from shared.policy.helm import KIND as HELM
from shared.policy.helm import HelmTarget
from shared.policy.model import Environment, Gate, Promotion, Rollback
from shared.releases.strategies import strategy_target

APPROVAL_SETTINGS = "approvalSettings"
"""Preflight check: the app's approval settings can open and decide the plan's gates."""
PREFLIGHT = (APPROVAL_SETTINGS,)
"""The checks a release started now runs before its first environment (ingestion and retry
put them in the input)."""


@dataclass(frozen=True)
class Stage:
    """One environment of the plan, read once from the snapshot into the policy's types;
    `to_dict` is the snapshot form the activities' requests carry."""

    environment: Environment

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Stage:
        """The stage a snapshot's environment (or a request's `stage`) describes."""
        return cls(Environment.from_dict(spec))

    def to_dict(self) -> dict[str, Any]:
        return self.environment.to_dict()

    @property
    def name(self) -> str:
        return self.environment.name

    @property
    def gate(self) -> Gate | None:
        return self.environment.gate

    @property
    def helm(self) -> HelmTarget | None:
        """The Helm chart this stage releases; None for a Deployment target."""
        return self.environment.helm

    @property
    def promotion(self) -> Promotion | None:
        return self.environment.promotion

    @property
    def rollback(self) -> Rollback:
        return self.environment.rollback

    @property
    def on_failure(self) -> str:
        """What a failed deployment here does: `environment` (restore it), `none`, or
        `environmentAndEarlier` (also restore the environments this release deployed before)."""
        return self.environment.rollback.on_failure

    @property
    def rollout_timeout(self) -> timedelta:
        return self.environment.rollout_timeout


@dataclass(frozen=True)
class ReleasePlan:
    """Everything an orchestration needs to walk a release through its environments."""

    release_id: str
    service: str
    version: str
    digest: str
    source_registry: dict[str, Any]
    source_repository: str
    stages: tuple[Stage, ...]
    pushed_by: str | None = None
    overwrites: dict[str, str] | None = None
    """The earlier release of this tag at another digest (`releaseId`, `digest`, `state`)."""
    preflight: tuple[str, ...] = ()
    tag_moved: bool = False
    """The registry said, when the push arrived, that the tag already named another image."""
    retries: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_input(cls, data: dict[str, Any]) -> ReleasePlan:
        policy, image = data["policy"], data["image"]
        return cls(release_id=data["releaseId"], service=policy["service"],
                   version=image["tag"], digest=image["digest"],
                   source_registry=policy["registry"], source_repository=image["repository"],
                   stages=tuple(Stage.from_dict(env) for env in policy["environments"]),
                   pushed_by=image.get("pushedBy"), overwrites=image.get("overwrites"),
                   preflight=tuple(data.get("preflight") or ()),
                   tag_moved=image.get("tagCurrent") is False,
                   retries=tuple(data.get("retries") or ()))

    @property
    def gates(self) -> dict[str, dict[str, Any]]:
        """Environment name → the gate as the snapshot wrote it, for the stages with a gate."""
        return {stage.name: stage.gate.to_dict() for stage in self.stages if stage.gate}

    def image_in(self, stage: Stage) -> str:
        """`host/repository@digest` as the stage's cluster pulls it."""
        environment = stage.environment
        return f"{_host(environment.image_registry['url'])}/{environment.image_repository}" \
               f"@{self.digest}"

    def promotion_request(self, stage: Stage) -> dict[str, Any]:
        """`promote_image`'s input for a stage with a promotion."""
        promotion = stage.promotion
        if promotion is None:
            raise ValueError(f"environment {stage.name!r} has no promotion")
        return {"registry": promotion.source_registry or self.source_registry,
                "source": f"{promotion.source_repository or self.source_repository}"
                          f"@{self.digest}",
                "target": f"{promotion.target_repository}:{self.version}",
                "targetRegistry": promotion.to_dict()["targetRegistry"],
                "acrImport": promotion.acr_import}

    def deploy_request(self, stage: Stage, chart: dict[str, Any] | None = None,
                       ) -> dict[str, Any]:
        """The sub-orchestration input that deploys, watches and verifies one stage (with
        the pinned chart, for a Helm target; a retried release's run number as `attempt`)."""
        request: dict[str, Any] = {
            "releaseId": self.release_id, "service": self.service, "version": self.version,
            "digest": self.digest, "stage": stage.to_dict(), "image": self.image_in(stage)}
        if self.retries:  # which run of the release, for its trace's span ids
            request["attempt"] = len(self.retries)
        return {**request, "chart": chart} if chart else request

    def approval_request(self, stage: Stage, deadline: datetime,
                         evidence: str | None) -> dict[str, Any]:
        """`request_approval`'s input: what the gate's links bind and its cards say."""
        gate = stage.gate
        return {"releaseId": self.release_id, "service": self.service, "version": self.version,
                "digest": self.digest, "environment": stage.name,
                "gate": gate.to_dict() if gate else None,
                "deadline": deadline.isoformat(), "pushedBy": self.pushed_by,
                "evidence": evidence, "secrets": stage.environment.secrets,
                "overwrites": self.overwrites, "tagMoved": self.tag_moved}

    def restored_deployment(self, stage: Stage, snapshot: dict[str, Any],
                            now: datetime) -> dict[str, Any] | None:
        """`record_deployment`'s request for a stage restored to `snapshot`: the release our
        annotations name there; None when it was not deployed by a release."""
        annotations = snapshot.get("annotations") or {}
        release_id, digest = annotations.get(RELEASE_ID), annotations.get(DIGEST)
        if not release_id or not digest:
            return None
        request = {"service": self.service, "environment": stage.name,
                   "releaseId": release_id, "digest": digest, "image": snapshot["image"],
                   "good": False, "at": now.isoformat()}
        if snapshot.get("kind") == HELM and snapshot.get("chart"):  # the chart put back
            request["chart"] = {"name": snapshot["chart"], "version": snapshot.get("chartVersion")}
        return request

    def release_record(self, state: str, now: datetime, *, environment: str | None = None,
                       step: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """The ledger row of this release in `state`."""
        return {"releaseId": self.release_id, "service": self.service, "version": self.version,
                "digest": self.digest, "state": state, "environment": environment,
                "step": step, "reason": reason, "updatedAt": now.isoformat()}


def early_failure_record(job: Mapping[str, Any], now: datetime, reason: str) -> dict[str, Any]:
    """`record_release`'s input that says, while a stage still deploys (Helm still waits),
    why it is failing; `job` is `deploy_environment`'s input."""
    return {"releaseId": job["releaseId"], "service": job["service"], "version": job["version"],
            "digest": job["digest"], "state": "Running", "environment": job["stage"]["name"],
            "step": "rollout", "reason": reason, "updatedAt": now.isoformat(),
            "stageState": "Deploying", "stageFinished": False}


def query_variables(stage: Stage, job: Mapping[str, Any]) -> dict[str, str]:
    """An analysis's query variables for `deploy_environment`'s input `job` (the analysis
    adds `windowStart`): with a rolling deploy, `stable` and `canary` are both the target's
    name (its Deployment, or its Helm release)."""
    deploy = stage.environment.deploy_target
    name = str(deploy.get("release") or deploy.get("deployment") or "")
    return {"service": str(job["service"]), "environment": stage.name,
            "version": str(job["version"]), "digest": str(job["digest"]),
            "stable": name, "canary": name}


def cluster_request(stage: Stage, **fields: Any) -> dict[str, Any]:
    """A deployment activity's request for the stage's cluster target."""
    environment = stage.environment
    return {"target": strategy_target(environment), "connection": environment.cluster,
            "secrets": environment.secrets, **fields}


def _host(url: str) -> str:
    return urlsplit(url if "://" in url else "https://" + url).netloc
