"""The operations desk: admits a rollback, a redeploy or a retry, builds its input, starts it.

Reads the ledger, Durable and the release policy through the protocols below (the app's
are in shared/app_context.py and triggers/durable_adapter.py) and asks the rules in
admission.py, in the order that names the first reason to refuse; a `Refusal` means nothing
was started. Does not read requests or write answers: triggers/releases.py does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.instances import Instance
from shared.ledger.records import EnvironmentState, ReleaseRecord
from shared.releases.admission import (
    CONFLICT,
    Refusal,
    check_names_a_release,
    check_no_operation_running,
    check_not_deploying,
    check_retry,
    check_rollback_target,
    check_runs_there,
    check_was_deployed,
    found,
    how_it_ended,
    live_plan,
    replaced,
    snapshot_image,
    stage_of,
)
from shared.releases.operations import (
    KINDS,
    ORCHESTRATORS,
    Deployed,
    Operation,
    next_operation_number,
    operation_id,
    operation_prefix,
    previous_good,
    was_deployed,
)
from shared.releases.plan import ReleasePlan
from shared.releases.retry import ACTIVE_RUNTIMES, retry_input
from shared.releases.turns import deploying

log = logging.getLogger(__name__)

SERVICE_RELEASES = 10_000   # rows of one service read to find the previous good release
RELEASE_ORCHESTRATOR = "release"


class Instances(Protocol):
    """What the desk needs of the Durable client (async, as the SDK's client is)."""

    async def status(self, instance_id: str, show_input: bool = False) -> Instance | None: ...

    async def with_prefix(self, prefix: str) -> Sequence[Instance]: ...

    async def start(self, orchestrator: str, instance_id: str, payload: Any) -> None: ...


class Releases(Protocol):
    """What the desk reads of the ledger (blocking calls: the desk runs them in a thread)."""

    def get_release(self, release_id: str, *,
                    service: str | None = None) -> ReleaseRecord | None: ...

    def releases(self, service: str | None = None, *, limit: int = ...) -> list[ReleaseRecord]: ...

    def environment_state(self, service: str, environment: str) -> EnvironmentState: ...


@dataclass(frozen=True)
class Retry:
    """A retry that started: which run it is, who asked and why, and the policy it runs under."""

    release_id: str
    number: int
    by: str
    reason: str
    after: dict[str, Any]
    policy_source: str
    policy_sha256: str


class OperationsDesk:
    """Admits and starts rollbacks, redeploys and retries; `Refusal` when one may not start."""

    def __init__(self, ledger: Releases, durable: Instances, policy: Callable[[], Any],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ledger = ledger
        self.durable = durable
        self.policy = policy   # the live release policy (blocking: read in a thread)
        self.now = now

    async def rollback(self, release_id: str, environment: str, reason: str,
                       by: str) -> Operation:
        """Roll `environment` back from this release (what runs there) to the previous good."""
        release = await self.release(release_id)
        plan, policy = await self.plan(release)
        stage = stage_of(plan, environment)
        state = await asyncio.to_thread(self.ledger.environment_state, release.service,
                                        environment)
        current = check_runs_there(release, environment, state.current)
        rows = await asyncio.to_thread(self.ledger.releases, release.service,
                                       limit=SERVICE_RELEASES)
        ids = await self.not_busy(release.service, environment, rows)
        target = check_rollback_target(release, environment,
                                       previous_good(rows, environment, release))
        number = next_operation_number([r.release_id for r in rows] + ids, release.service,
                                       environment)
        snapshot = await self.release_input(target.release_id)
        return Operation(
            operation_id=operation_id("rollback", release.service, environment, number),
            kind="rollback", service=release.service, stage=stage, by=by, reason=reason,
            release=Deployed(target.release_id, target.version, target.digest,
                             snapshot_image(snapshot, plan, stage, target.digest)),
            replaces=Deployed(release.release_id, release.version, release.digest,
                              current.image),
            policy=policy)

    async def redeploy(self, release_id: str, environment: str, reason: str,
                       by: str) -> Operation:
        """Deploy this past release's image into an environment it reached before, again."""
        release = await self.release(release_id)
        plan, policy = await self.plan(release)
        stage = stage_of(plan, environment)
        check_was_deployed(release, environment, was_deployed(release, environment))
        state = await asyncio.to_thread(self.ledger.environment_state, release.service,
                                        environment)
        rows = await asyncio.to_thread(self.ledger.releases, release.service,
                                       limit=SERVICE_RELEASES)
        ids = await self.not_busy(release.service, environment, rows)
        number = next_operation_number([r.release_id for r in rows] + ids, release.service,
                                       environment)
        return Operation(
            operation_id=operation_id("redeploy", release.service, environment, number),
            kind="redeploy", service=release.service, stage=stage, by=by, reason=reason,
            release=Deployed(release.release_id, release.version, release.digest,
                             plan.image_in(stage)),
            replaces=replaced(state.current, rows), policy=policy)

    async def start(self, op: Operation) -> None:
        """Start the operation's orchestration; Refusal(conflict) when a twin just did."""
        try:
            await self.durable.start(ORCHESTRATORS[op.kind], op.operation_id, op.to_input())
        except Exception:  # the SDK raises a bare Exception; a concurrent start is a conflict
            if await self.durable.status(op.operation_id) is not None:
                raise Refusal(CONFLICT, f"operation {op.operation_id} was just started by "
                                        "another request") from None
            raise
        log.info("%s started by %s: %s", op.operation_id, op.by, op.describe())

    async def retry(self, release_id: str, reason: str, by: str) -> Retry:
        """Run a release that ended Failed again, same id, under today's policy."""
        release = await self.release(release_id)
        status = await self.durable.status(release.release_id, show_input=True)
        previous = status.input if status is not None else None
        output = status.output if status is not None else None
        runtime = status.runtime if status is not None else None
        outcome = output.get("outcome") if isinstance(output, dict) else None
        policy = await asyncio.to_thread(self.policy)
        service = policy.services.get(release.service)
        rows = await asyncio.to_thread(self.ledger.releases, release.service,
                                       limit=SERVICE_RELEASES)
        check_retry(release, runtime, outcome, previous, rows, service)
        assert isinstance(previous, dict)  # check_retry refuses a release without its input
        data = retry_input(previous, service.snapshot(), by=by, reason=reason, at=self.now(),
                           after=how_it_ended(release, runtime, output))
        try:
            await self.durable.start(RELEASE_ORCHESTRATOR, release.release_id, data)
        except Exception:  # the SDK raises a bare Exception; a concurrent retry is a conflict
            again = await self.durable.status(release.release_id)
            if again is not None and again.runtime in ACTIVE_RUNTIMES:
                raise Refusal(CONFLICT, f"{release_id} was just retried by another "
                                        "request") from None
            raise
        number = data["retries"][-1]["number"]
        log.info("%s retried (%d) by %s: %s", release.release_id, number, by, reason or "-")
        return Retry(release.release_id, number, by, reason, data["retries"][-1]["after"],
                     policy.source, policy.sha256)

    async def release(self, release_id: str) -> ReleaseRecord:
        """The ledger's row of the release an operation names (an id of the right shape)."""
        check_names_a_release(release_id)
        return found(release_id, await asyncio.to_thread(self.ledger.get_release, release_id))

    async def plan(self, release: ReleaseRecord) -> tuple[ReleasePlan, dict[str, Any]]:
        """The release's plan from its policy snapshot; the live policy once that is purged."""
        snapshot = await self.release_input(release.release_id)
        if snapshot is not None:
            policy = snapshot["policy"].get("policy") or {}
            return ReleasePlan.from_input(snapshot), {
                "from": "snapshot", "releaseId": release.release_id,
                "source": policy.get("source"), "sha256": policy.get("sha256")}
        live = await asyncio.to_thread(self.policy)
        try:
            service = live.service(release.service)
        except KeyError:
            raise Refusal(CONFLICT, f"{release.release_id} has no policy snapshot any more "
                                    "(its orchestration history was purged) and the live "
                                    f"policy has no service {release.service}") from None
        log.warning("%s: policy snapshot purged; using the live policy %s", release.release_id,
                    live.source)
        return live_plan(release, service.snapshot()), {
            "from": "live", "releaseId": release.release_id, "source": live.source,
            "sha256": live.sha256}

    async def not_busy(self, service: str, environment: str,
                       rows: list[ReleaseRecord]) -> list[str]:
        """Refusal(conflict) while an operation or a release deploys there; else the
        operations' instance ids seen in Durable (they number the next one)."""
        ids: list[str] = []
        for kind in KINDS:
            instances = await self.durable.with_prefix(
                operation_prefix(kind, service, environment))
            ids += [instance.instance_id for instance in instances]
            check_no_operation_running(((i.instance_id, i.runtime) for i in instances),
                                       service, environment)
        for row in rows:
            if deploying(row, environment):
                status = await self.durable.status(row.release_id)
                check_not_deploying(row.release_id, environment,
                                    status.runtime if status is not None else None)
        return ids

    async def release_input(self, release_id: str) -> dict[str, Any] | None:
        """The release orchestration's input (the policy snapshot), None once purged."""
        status = await self.durable.status(release_id, show_input=True)
        data = status.input if status is not None else None
        if not isinstance(data, dict) or not isinstance(data.get("policy"), dict):
            return None
        return data
