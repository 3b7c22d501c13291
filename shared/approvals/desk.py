"""The approval desk: checks a link and a person against a release's gate, hands over decisions.

`Desk.open` checks the link (signature under any active key, bound to this release,
environment and the release's digest, unexpired, scope), that the release waits at this
gate, who decides (App Service Authentication's principal, or the approver the link names)
and that they may (the gate's users and groups, never the pusher), and that this person has
not used this link before; a `Problem` (nothing changed) otherwise. A desk that would take
the principal from headers while App Service Authentication is off refuses every request.
`Desk.decide` raises the decision event on the name the release waits for and reads the
verdict that the release's `check_approval` records in the approval book. Durable, the
approval book and the ledger (what runs where; the analysis rounds of the environments
before the gate) come in through the protocols below.
Does not read requests or write answers (triggers/approvals.py), and does not count
approvals or end the gate: the orchestration does (orchestrations/release.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.approvals import keys
from shared.approvals.decisions import decision_data
from shared.approvals.identity import IdentityError, Principal, may_approve, principal_from_headers
from shared.approvals.keys import IdentityMode
from shared.approvals.page import (
    AnalysisBefore,
    Approval,
    ChartShown,
    GateView,
    Problem,
    RunningNow,
    Verdict,
    when,
)
from shared.approvals.teams import earlier_image
from shared.approvals.tokens import (
    MAX_TOKEN_LENGTH,
    Grant,
    Keyring,
    TokenExpired,
    TokenInvalid,
    TokenMismatch,
    TokenScope,
    verify,
)
from shared.instances import Instance
from shared.ledger import EnvironmentState, LedgerError, ReleaseRecord
from shared.ledger.approvals import ApprovalBook, ApprovalUse, use_key
from shared.releases.changes import ReleaseChanges
from shared.releases.plan import ReleasePlan
from shared.releases.rounds import AnalysisRound, Recorded, by_environment
from shared.releases.status import ReleaseStatus
from shared.releases.waiting import ApprovalWait
from shared.text import one_line
from shared.timefmt import as_utc

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
STATUS_EVERY = 5          # re-read the release's status every this many polls
DECISIONS = ("approve", "reject")


class Gates(Protocol):
    """What the desk needs of the Durable client (async, as the SDK's client is)."""

    async def status(self, instance_id: str, show_input: bool = False) -> Instance | None: ...

    async def raise_event(self, instance_id: str, event: str, payload: Any) -> None: ...


class Book(Protocol):
    """The approval book: every use of a link (blocking calls: run in a thread)."""

    def find(self, release_id: str, environment: str, key: str) -> ApprovalUse | None: ...

    def uses(self, release_id: str, environment: str) -> list[ApprovalUse]: ...


class Running(Protocol):
    """What the ledger says runs in an environment (blocking calls: run in a thread)."""

    def environment_state(self, service: str, environment: str) -> EnvironmentState: ...

    def get_release(self, release_id: str, *,
                    service: str | None = None) -> ReleaseRecord | None: ...


Rounds = Callable[[str], Sequence[Recorded]]
"""A release's analysis rounds as the ledger keeps them (`EvidenceBook.rounds`; blocking)."""
Changes = Callable[[str, str], Mapping[str, Any] | None]
"""What a release changes at a gate, as `request_approval` kept it (`ChangesBook.find`;
blocking)."""


# The gate ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Who:
    """Who decides: the name to show, every identifier (the first keys their use), groups."""

    name: str
    identities: tuple[str, ...]
    groups: tuple[str, ...]
    source: str
    principal: Principal


@dataclass(frozen=True)
class OpenGate:
    """A verified link to a gate that waits, and the person who may decide there."""

    release_id: str
    environment: str
    grant: Grant
    who: Who
    use_key: str
    waiting: ApprovalWait
    status: ReleaseStatus
    plan: ReleasePlan
    pushed_by: str | None


def app_desk(durable: Gates, ledger: Callable[[], Running],
             rounds: Callable[[], Rounds] | None = None,
             changes: Callable[[], Changes] | None = None) -> Desk:
    """The desk under the app's approval settings and book; Problem when they do not allow
    approvals here (sign-in not enforced, no signing key, no approval book)."""
    try:
        mode = keys.identity_mode()
    except keys.SignInNotEnforced as error:  # sign-in headers anyone could send
        log.error("approval page: %s", error)
        raise Problem("forbidden", f"approvals are refused here: {error}") from None
    except keys.ApprovalConfigError as error:
        log.error("approval page: %s", error)
        raise Problem("unavailable", "approvals are not configured on this app") from None
    try:
        keyring = keys.app_keyring()
    except keys.ApprovalConfigError as error:
        log.error("approval page: %s", error)
        raise Problem("unavailable", "approvals are not configured on this app") from None
    try:
        book = ApprovalBook.from_app_settings()
    except LedgerError as error:
        log.error("approval page: %s", error)
        raise Problem("unavailable", "the approval book is not configured") from None
    return Desk(durable, mode, keyring, book, ledger, rounds, changes)


class Desk:
    """Checks links and people against a release's gate, and hands decisions to it."""

    def __init__(self, durable: Gates, mode: IdentityMode, keyring: Keyring, book: Book,
                 ledger: Callable[[], Running],
                 rounds: Callable[[], Rounds] | None = None,
                 changes: Callable[[], Changes] | None = None) -> None:
        self.durable = durable
        self.mode = mode
        self.keyring = keyring
        self.book = book
        self.ledger = ledger   # what runs where; a ledger that cannot be had only hides it
        self.rounds = rounds   # the analysis before the gate; unreadable, it is only hidden
        self.changes = changes  # what the release changes; unreadable, "not read" is shown

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def open(self, release_id: str, environment: str, token: str,
                   headers: Mapping[str, str], decision: str | None = None) -> OpenGate:
        """The gate a request with this link and these (sign-in) headers may decide at;
        Problem (nothing changed) otherwise. The ids have been checked for their shape."""
        if not token:
            raise Problem("invalid", "this address has no approval token; open the whole link"
                                     " from the approval request")
        if len(token) > MAX_TOKEN_LENGTH:
            raise Problem("invalid", str(TokenInvalid()))
        instance = await self.durable.status(release_id, show_input=True)
        plan = release_plan(instance)
        if instance is None or plan is None:
            raise Problem("not-found", f"there is no release {release_id}")
        status = ReleaseStatus.from_dict(instance.custom_status)
        grant = self.verified(token, release_id, environment, plan.digest, decision)
        who = self.who(headers, grant)
        key = use_key(grant.nonce, who.identities[0])
        used = await self.book_call(self.book.find, release_id, environment, key)
        if used is not None:  # before the gate's state: a replay hears who decided, and when
            raise Problem("used", already(used))
        waiting = await self.waiting(instance, status, release_id, environment)
        pushed_by = plan.pushed_by or status.pushed_by
        gate = next((stage.gate for stage in plan.stages if stage.name == environment), None)
        allowed, reason = may_approve(
            who.principal, users=gate.users if gate else (), groups=gate.groups if gate else (),
            pusher=pushed_by, environment=environment)
        if not allowed:
            raise Problem("forbidden", reason)
        return OpenGate(release_id, environment, grant, who, key, waiting, status, plan,
                        pushed_by)

    def verified(self, token: str, release_id: str, environment: str, digest: str,
                 decision: str | None) -> Grant:
        """The link's grant for `decision` (any decision its scope allows, for the page)."""
        now = self.now()
        try:
            for attempt in ([decision] if decision else list(DECISIONS)):
                try:
                    return verify(self.keyring, token, now=now, release_id=release_id,
                                  environment=environment, digest=digest, decision=attempt)
                except TokenScope:
                    if decision or attempt == DECISIONS[-1]:
                        raise
        except TokenInvalid as error:
            raise Problem("invalid", str(error)) from None
        except TokenMismatch as error:
            raise Problem("mismatch", str(error)) from None
        except TokenExpired as error:
            raise Problem("expired", str(error)) from None
        except TokenScope as error:
            raise Problem("scope", str(error)) from None
        raise AssertionError("unreachable")

    async def waiting(self, instance: Instance | None, status: ReleaseStatus, release_id: str,
                      environment: str) -> ApprovalWait:
        """The release's wait at this gate (with its event); Problem closed / not waiting
        otherwise."""
        waiting = status.waiting_for
        running = instance is not None and instance.runtime == "Running"
        if running and status.step == "approval" and isinstance(waiting, ApprovalWait) \
                and (waiting.environment or status.environment) == environment \
                and waiting.event:
            return waiting
        uses = await self.book_call(self.book.uses, release_id, environment)
        decided = next((u for u in uses if u.counted and u.decision == "reject"), None) \
            or next((u for u in uses if u.counted), None)
        if decided is not None:
            verb = "approved" if decided.decision == "approve" else "rejected"
            raise Problem("closed", f"this gate is closed: {verb} by {decided.by} at"
                                    f" {when(decided.at)}")
        outcome, reason = status.outcome, status.reason
        if outcome and status.environment == environment:
            raise Problem("closed", f"this gate is closed: {outcome}"
                                    + (f" ({reason})" if reason else ""))
        if not running:
            raise Problem("closed", f"release {release_id} has ended"
                                    + (f": {outcome}" if outcome else ""))
        step = status.step or "starting"
        where = f" in {status.environment}" if status.environment else ""
        raise Problem("not-waiting", f"release {release_id} is not waiting for approval in"
                                     f" {environment} (now: {step}{where}); try again when"
                                     " it does")

    def who(self, headers: Mapping[str, str], grant: Grant) -> Who:
        """The person deciding, by identity mode."""
        if self.mode == "token":
            if not grant.approver:
                raise Problem("forbidden", "this link names no approver, and this app identifies"
                                           " approvers by their link (APPROVAL_IDENTITY=token)")
            name = grant.approver.strip()
            return Who(name, (name.casefold(),), (), "named in this link", Principal.local(name))
        try:
            principal = principal_from_headers(headers)
        except IdentityError as error:
            raise Problem("bad-request", str(error)) from None
        if principal is None:
            raise Problem("unauthenticated", "sign in to approve: this app takes the approver"
                                             " from App Service Authentication, and this"
                                             " request carries no signed-in user")
        known = principal.identifiers()
        if grant.approver and grant.approver.strip().casefold() not in known:
            raise Problem("forbidden", f"this link was sent to {grant.approver}; you are"
                                       f" signed in as {principal.name}")
        first = (principal.object_id or principal.name).strip().casefold()
        identities = (first, *sorted(known - {first}))
        return Who(principal.name, identities, tuple(sorted(principal.groups)), "signed in",
                   principal)

    async def view(self, gate: OpenGate, intent: str | None) -> GateView:
        """What the decision page shows; what runs there now, the analysis before the gate
        and what the release changes (as read when the gate opened) come from the ledger."""
        return replace(gate_view(gate, intent, await self.running_now(gate),
                                 await self.analysis_before(gate)),
                       changes=await self.changes_at(gate))

    async def changes_at(self, gate: OpenGate) -> ReleaseChanges | None:
        """What the release changes at this gate, as read when it opened."""
        if self.changes is None:
            return None
        try:
            kept = await asyncio.to_thread(self.changes(), gate.release_id, gate.environment)
        except LedgerError as error:
            log.warning("approval page: the changes at %s are unknown: %s", gate.environment,
                        error)
            return None
        return ReleaseChanges.from_dict(kept)

    async def analysis_before(self, gate: OpenGate) -> tuple[AnalysisBefore, ...]:
        """The recorded analysis rounds of the environments before the gate."""
        if self.rounds is None:
            return ()
        try:
            recorded = await asyncio.to_thread(self.rounds(), gate.release_id)
        except LedgerError as error:
            log.warning("approval page: the analysis before %s is unknown: %s",
                        gate.environment, error)
            return ()
        return analysis_before(gate, [AnalysisRound.of(r) for r in recorded])

    async def running_now(self, gate: OpenGate) -> RunningNow | None:
        service = gate.status.service
        if not service:
            return None
        try:
            ledger = self.ledger()
            state = await asyncio.to_thread(ledger.environment_state, service, gate.environment)
            current = state.current
            if current is None:
                return None
            row = await asyncio.to_thread(ledger.get_release, current.release_id,
                                          service=service)
        except LedgerError as error:
            log.warning("approval page: what runs in %s is unknown: %s", gate.environment, error)
            return None
        return RunningNow(current.release_id, current.digest, row.version if row else None,
                          current.since)

    async def decide(self, gate: OpenGate, decision: str, comment: str | None, via: str,
                     within: float) -> Verdict:
        """Raise the decision on the event the gate waits for; its verdict, or Pending when
        the release has not taken it within `within` seconds."""
        event_id = uuid.uuid4().hex
        at = self.now()
        data = decision_event(gate, decision, comment, event_id, at, via)
        event = gate.waiting.event or ""  # `waiting` opens only a gate whose wait names one
        await self.durable.raise_event(gate.release_id, event, data)
        log.info("approval: %s %s in %s by %s (event %s)", decision, gate.release_id,
                 gate.environment, gate.who.name, event)
        deadline = time.monotonic() + within
        polls = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            polls += 1
            # The gate's state is read before the book: when it moved on (or closed) and our
            # row is still missing, the release never took our event.
            now_waiting: ApprovalWait | Problem | None = None
            if polls % STATUS_EVERY == 0:
                now_waiting = await self.still_waiting(gate)
            row = await self.book_call(self.book.find, gate.release_id, gate.environment,
                                       gate.use_key)
            if row is not None:
                if row.event_id != event_id:
                    raise Problem("used", already(row))
                return await self.verdict(gate, row)
            if isinstance(now_waiting, Problem):
                raise now_waiting
            if now_waiting is not None and now_waiting.event != event:
                event = now_waiting.event or ""
                await self.durable.raise_event(gate.release_id, event, data)
        return Verdict(decision, False, "Pending", "submitted; the release has not taken it yet",
                       gate.who.name, at, comment)

    async def still_waiting(self, gate: OpenGate) -> ApprovalWait | Problem:
        """The gate's wait now, or the Problem saying it closed."""
        instance = await self.durable.status(gate.release_id)
        status = ReleaseStatus.from_dict(instance.custom_status if instance else None)
        try:
            return await self.waiting(instance, status, gate.release_id, gate.environment)
        except Problem as closed:
            return closed

    async def verdict(self, gate: OpenGate, row: ApprovalUse) -> Verdict:
        """The check's verdict on our decision, and where the gate stands after it."""
        if not row.counted:
            return _verdict(row, "Refused", row.reason)
        if row.decision == "reject":
            return _verdict(row, "Rejected", row.reason)
        uses = await self.book_call(self.book.uses, gate.release_id, gate.environment)
        people = {u.use_key.partition(":")[2] for u in uses
                  if u.counted and u.decision == "approve"}
        required = gate.waiting.required_approvals or 1
        if len(people) >= required:
            return _verdict(row, "Approved", row.reason)
        return _verdict(row, "Waiting", f"{len(people)} of {required} approvals; waiting for"
                                        f" {required - len(people)} more")

    async def book_call(self, method: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(method, *args)
        except LedgerError as error:
            log.error("approval page: %s", error)
            raise Problem("unavailable", "the approval book cannot be read right now") from None


# Pure parts -------------------------------------------------------------------------------

def decision_event(gate: OpenGate, decision: str, comment: str | None, event_id: str,
                   at: datetime, via: str) -> dict[str, Any]:
    """The decision event's data (see the approval contract, section 4)."""
    return decision_data(decision=decision, approver=gate.who.name,
                         identities=gate.who.identities, nonce=gate.grant.nonce, at=at,
                         event_id=event_id, via=via, groups=gate.who.groups, comment=comment)


def gate_view(gate: OpenGate, intent: str | None, running_now: RunningNow | None,
              analysis: tuple[AnalysisBefore, ...] = ()) -> GateView:
    """The page's facts, picked field by field (nothing from the policy's secrets)."""
    status, waiting = gate.status, gate.waiting
    approvals = tuple(Approval(str(a.by), as_utc(a.at)) for a in waiting.counted)
    return GateView(
        release_id=gate.release_id, service=status.service or "?",
        version=status.version or gate.plan.version or "?",
        digest=gate.grant.digest, environment=gate.environment, approver=gate.who.name,
        approver_source=gate.who.source, deadline=as_utc(waiting.deadline),
        required_approvals=waiting.required_approvals or 1, approvals=approvals,
        running_now=running_now,
        evidence=tuple((env, text) for env, text in status.evidence.items() if text),
        pushed_by=gate.pushed_by, overwrites=earlier_image(gate.plan.overwrites),
        tag_moved=gate.plan.tag_moved,
        scope=gate.grant.scope,
        link_expires_at=gate.grant.expires_at, intent=intent, chart=chart_before(gate),
        analysis=analysis)


def analysis_before(gate: OpenGate, rounds: Sequence[AnalysisRound]
                    ) -> tuple[AnalysisBefore, ...]:
    """Per environment before the gate (in the plan's order) that has rounds: their verdicts
    and the last one's numbers. The gate's own environment and later ones are not shown."""
    names = [stage.name for stage in gate.plan.stages]
    earlier = names[:names.index(gate.environment)] if gate.environment in names else []
    found = dict(by_environment(rounds))
    return tuple(AnalysisBefore.of(environment, found[environment])
                 for environment in earlier if found.get(environment))


def chart_before(gate: OpenGate) -> ChartShown | None:
    """The chart of the nearest environment before the gate that ran a Helm chart (the
    release pinned it there and deploys the same one on); None when none did."""
    names = [stage.name for stage in gate.plan.stages]
    earlier = names[:names.index(gate.environment)] if gate.environment in names else []
    for environment in reversed(earlier):
        deployed = gate.status.helm.get(environment)
        if deployed is not None and deployed.chart and deployed.version:
            return ChartShown(one_line(deployed.chart, 128), one_line(deployed.version, 128),
                              one_line(deployed.digest, 100) if deployed.digest else None,
                              environment)
    return None


def _verdict(row: ApprovalUse, outcome: str, reason: str | None) -> Verdict:
    return Verdict(decision=row.decision, counted=row.counted, outcome=outcome, reason=reason,
                   by=row.by, at=row.at, comment=row.comment)


def already(use: ApprovalUse) -> str:
    return f"already decided by {use.by} at {when(use.at)}"


def release_plan(instance: Instance | None) -> ReleasePlan | None:
    """The plan of a release instance, read from its input as the orchestration reads it;
    None for another orchestration or an input that is not a release's."""
    if instance is None or instance.name != "release" or not isinstance(instance.input, dict):
        return None
    try:
        return ReleasePlan.from_input(instance.input)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
