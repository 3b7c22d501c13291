"""One service's pipeline: its environments left to right, the way Kargo shows stages.

Per environment: what runs and since when (and whether it is the last good release), the
gate before it and whom it waits for, the releases waiting there or deploying there now, a
failed deployment waiting for a person, and the last failure with its reason. Pure: the
trigger reads the policy, the ledger and the live statuses and passes `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.ledger.records import EnvironmentState, ReleaseRecord
from shared.policy.model import Environment
from shared.releases.status import ReleaseStatus
from shared.timefmt import as_utc

from .view import (
    DASHBOARD_PATH,
    DEFAULT_REFRESH,
    DeployedView,
    PausedRow,
    WaitingRow,
    deployed_view,
    details_link,
    paused_row,
    plain_fields,
    relative,
    short_digest,
    text,
    waiting_row,
)

FAILED_STAGES = ("Failed", "RolledBack")
APPROVERS_SHOWN = 10


@dataclass(frozen=True)
class GateView:
    """The approval before an environment: who may decide, how many must."""

    approvers: tuple[str, ...]
    required_approvals: int
    deadline_text: str


@dataclass(frozen=True)
class MovingView:
    """A release deploying into the environment now (or waiting for its turn there)."""

    release_id: str
    version: str
    digest: str
    step: str
    since_text: str
    link: str


@dataclass(frozen=True)
class FailureView:
    """The newest release whose deployment here failed or was rolled back, and why."""

    release_id: str
    version: str
    state: str
    reason: str
    at: datetime | None
    at_text: str
    link: str


@dataclass(frozen=True)
class StageView:
    """One environment of the pipeline."""

    environment: str
    in_policy: bool
    strategy: str
    current: DeployedView | None
    last_good: DeployedView | None
    good: bool
    gate: GateView | None
    waiting: tuple[WaitingRow, ...]
    moving: tuple[MovingView, ...]
    paused: tuple[PausedRow, ...]
    last_failure: FailureView | None


@dataclass(frozen=True)
class Pipeline:
    """A service's page: its environments in the policy's order."""

    service: str
    generated_at: datetime
    refresh: int
    messages: tuple[str, ...]
    stages: tuple[StageView, ...]

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def build_pipeline(service: str, *, now: datetime, environments: Sequence[Environment] | None,
                   states: Sequence[EnvironmentState], releases: Sequence[ReleaseRecord],
                   statuses: Mapping[str, Any], known: Mapping[str, ReleaseRecord],
                   refresh: int = DEFAULT_REFRESH, messages: Sequence[str] = (),
                   base: str = DASHBOARD_PATH) -> Pipeline:
    """The page from what the trigger read: the service's policy environments (None when
    the policy could not be read), its environment states, its recent releases (newest
    first), the live status of those waiting or paused, and releases by id."""
    now = as_utc(now) or now
    by_name = {state.environment: state for state in states}
    configured = {environment.name: environment for environment in environments or ()}
    names = list(configured) + [name for name in by_name if name not in configured]
    stages = []
    for name in names:
        state, environment = by_name.get(name), configured.get(name)
        current = deployed_view(state.current if state else None, known, now, base)
        last_good = deployed_view(state.last_good if state else None, known, now, base)
        here = [r for r in releases if r.environment == name]
        stages.append(StageView(
            environment=name, in_policy=environment is not None,
            strategy=_strategy(environment),
            current=current, last_good=last_good,
            good=current is not None and last_good is not None
            and current.release_id == last_good.release_id,
            gate=_gate(environment),
            waiting=tuple(waiting_row(r, ReleaseStatus.from_dict(statuses.get(r.release_id)),
                                      now, base)
                          for r in here if r.state == "WaitingForApproval"),
            moving=tuple(_moving(r, now, base) for r in here
                         if r.state == "Running" and r.step != "paused"),
            paused=tuple(paused_row(r, ReleaseStatus.from_dict(statuses.get(r.release_id)),
                                    now, base)
                         for r in here if r.state == "Running" and r.step == "paused"),
            last_failure=_last_failure(name, releases, now, base)))
    return Pipeline(service=service, generated_at=now, refresh=refresh,
                    messages=tuple(text(m, 1000) for m in messages), stages=tuple(stages))


def _strategy(environment: Environment | None) -> str:
    if environment is None:
        return ""
    if environment.helm is not None:
        return "Helm chart"
    return {"rolling": "rolling", "canary": "canary", "blueGreen": "blue-green"}.get(
        environment.strategy.KIND, environment.strategy.KIND)


def _gate(environment: Environment | None) -> GateView | None:
    gate = environment.gate if environment is not None else None
    if gate is None:
        return None
    named = [*gate.users, *(f"group {group}" for group in gate.groups)]
    shown = tuple(text(name, 120) for name in named[:APPROVERS_SHOWN])
    if len(named) > APPROVERS_SHOWN:
        shown += (f"and {len(named) - APPROVERS_SHOWN} more",)
    hours = gate.deadline.total_seconds() / 3600
    return GateView(approvers=shown, required_approvals=gate.required_approvals,
                    deadline_text=f"{hours:g} h to decide")


def _moving(record: ReleaseRecord, now: datetime, base: str) -> MovingView:
    return MovingView(release_id=record.release_id, version=record.version,
                      digest=short_digest(record.digest), step=text(record.step, 80),
                      since_text=relative(as_utc(record.updated_at), now),
                      link=details_link(record.release_id, base))


def _last_failure(environment: str, releases: Sequence[ReleaseRecord], now: datetime,
                  base: str) -> FailureView | None:
    failed = [(stage.finished or record.updated_at, record)
              for record in releases
              if (stage := record.stages.get(environment)) is not None
              and stage.state in FAILED_STAGES]
    if not failed:
        return None
    at, record = max(failed, key=lambda pair: as_utc(pair[0]) or now)
    stage = record.stages[environment]
    return FailureView(release_id=record.release_id, version=record.version,
                       state=stage.state, reason=text(stage.detail or record.reason),
                       at=as_utc(at), at_text=relative(as_utc(at), now),
                       link=details_link(record.release_id, base))
