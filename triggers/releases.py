"""`/api/releases`: releases from the ledger with their live status; rollbacks and redeploys.

- `GET /api/releases?service=&state=&limit=`: the ledger's releases (and operations),
  newest first; 400 for an unknown parameter, state or a bad limit.
- `GET /api/releases/{releaseId}`: one row with its stages, a timeline (registry events,
  orchestration steps, stage outcomes) and the live Durable status; 404 when unknown.
- `POST /api/releases/{releaseId}/rollback` `{"environment", "reason"}`: roll the
  environment back from this release (what runs there now) to the previous good one.
- `POST /api/releases/{releaseId}/redeploy` `{"environment", "reason"?}`: deploy this past
  release's image (by digest, from the environment's repository) there again.
- `POST /api/releases/{releaseId}/retry` `{"reason"?}` (or no body): run a `Failed` release
  again from its first environment, same id, under today's policy (shared/releases/retry.py
  says when it may); its timeline records who, when and why.

An operation starts only when it can: 404/400/409 with a one-line reason and nothing
started otherwise, 202 with the operation's links when started. The operator is
`X-MS-CLIENT-PRINCIPAL-NAME` while App Service Authentication is on (which sets it), else
`anonymous`: without it the header is anyone's to send, and it is ignored.
Links point at this API, never at the Durable management API (its URLs carry the host's
system key in Azure); answers that carry links (a release's approval links above all) are
`Cache-Control: no-store`. Nothing secret is shown: the policy snapshot, which names secrets,
stays in the orchestration input.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from shared.app_context import app_ledger, app_policy
from shared.approvals.keys import app_service_auth
from shared.ledger import RELEASE_STATES, LedgerError, ReleaseRecord
from shared.policy.errors import PolicyError
from shared.releases.operations import (
    KINDS,
    ORCHESTRATORS,
    Deployed,
    Operation,
    next_operation_number,
    one_line,
    operation_id,
    operation_kind,
    operation_number,
    operation_prefix,
    previous_good,
    was_deployed,
)
from shared.releases.plan import ReleasePlan, Stage
from shared.releases.retry import ended_as, policy_refusal, retry_input, retry_refusal
from shared.timefmt import as_utc
from triggers.durable_adapter import decoded
from triggers.identifiers import INSTANCE_ID, NAME
from triggers.orchestrators import parse_json_body
from triggers.responses import error_response, json_response

log = logging.getLogger(__name__)
bp = df.Blueprint()

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
ANONYMOUS = "anonymous"
LIST_PARAMETERS = ("service", "state", "limit")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_BODY = 64 * 1024
MAX_REASON = 500
SERVICE_RELEASES = 10_000   # rows of one service read to find the previous good release
SERVICE_EVENTS = 1_000      # events of one service read for a release's timeline
SHOWN_ORCHESTRATIONS = frozenset({"release", *ORCHESTRATORS.values()})
RETRIED = "retried"  # the history step of a retry (orchestrations/release.py Journal)
# Answers with links, approval links (tokens) above all: never kept by a cache or proxy.
NO_STORE = {"Cache-Control": "no-store"}
ACTIVE = frozenset({OrchestrationRuntimeStatus.Pending, OrchestrationRuntimeStatus.Running,
                    OrchestrationRuntimeStatus.ContinuedAsNew,
                    OrchestrationRuntimeStatus.Suspended})


class Refused(Exception):
    """A request we answer with a 4xx and a one-line reason; nothing was changed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# The routes ------------------------------------------------------------------------------

@bp.route(route="releases", methods=["GET"])
async def list_releases(req: func.HttpRequest) -> func.HttpResponse:
    """The ledger's releases, newest first, filtered by service and state."""
    async def answer() -> func.HttpResponse:
        service, states, limit = list_filters(req.params)
        rows = await asyncio.to_thread(app_ledger().releases, service, state=states or None,
                                       limit=limit)
        return json_response([summary(row, origin(req)) for row in rows], 200, NO_STORE)

    return await answering(answer)


@bp.route(route="releases/{releaseId}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def show_release(req: func.HttpRequest,
                       client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One release (or operation): ledger row, stages, timeline and live Durable status."""
    async def answer() -> func.HttpResponse:
        view = ReleaseView(client)
        return json_response(await view.show(req.route_params.get("releaseId", ""),
                                             origin(req)), 200, NO_STORE)

    return await answering(answer)


@bp.route(route="releases/{releaseId}/rollback", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_rollback(req: func.HttpRequest,
                         client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Roll an environment back from this release to the previous good one."""
    async def answer() -> func.HttpResponse:
        body = request_body(req.get_body(), required=("environment", "reason"))
        operations = Operations(client)
        op = await operations.rollback(req.route_params.get("releaseId", ""),
                                       body["environment"], body["reason"],
                                       operator(req.headers))
        return await operations.start(op, origin(req))

    return await answering(answer)


@bp.route(route="releases/{releaseId}/redeploy", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_redeploy(req: func.HttpRequest,
                         client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Deploy this past release's image into an environment it reached before, again."""
    async def answer() -> func.HttpResponse:
        body = request_body(req.get_body(), required=("environment",), optional=("reason",))
        operations = Operations(client)
        op = await operations.redeploy(req.route_params.get("releaseId", ""),
                                       body["environment"], body.get("reason", ""),
                                       operator(req.headers))
        return await operations.start(op, origin(req))

    return await answering(answer)


@bp.route(route="releases/{releaseId}/retry", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def retry_release(req: func.HttpRequest,
                        client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Run a release that failed (for reasons outside its image) again, under the same id."""
    async def answer() -> func.HttpResponse:
        raw = req.get_body() or b""
        body = request_body(raw, required=(), optional=("reason",)) if raw.strip() else {}
        return await Retries(client).start(req.route_params.get("releaseId", ""),
                                           body.get("reason", ""), operator(req.headers),
                                           origin(req))

    return await answering(answer)


async def answering(answer: Callable[[], Awaitable[func.HttpResponse]]) -> func.HttpResponse:
    """Refusals become their 4xx, an unreachable ledger or policy a 503, each on one line."""
    try:
        return await answer()
    except Refused as refused:
        return error_response(refused.status, refused.reason)
    except LedgerError as error:
        log.error("releases API: %s", error)
        return error_response(503, f"ledger unavailable: {error}")
    except PolicyError:
        log.exception("releases API: the release policy is invalid")
        return error_response(503, "release policy is invalid; see the app log")


# Requests --------------------------------------------------------------------------------

def list_filters(params: Mapping[str, str]) -> tuple[str | None, list[str], int]:
    """(service, states, limit) of `GET /api/releases`; Refused(400) names what is wrong."""
    unknown = sorted(set(params) - set(LIST_PARAMETERS))
    if unknown:
        raise Refused(400, f"unknown query parameter {unknown[0]!r}; "
                           f"expected {', '.join(LIST_PARAMETERS)}")
    service = (params.get("service") or "").strip() or None
    if service is not None and (len(service) > 63 or not NAME.fullmatch(service)):
        raise Refused(400, f"service {one_line(service, 80)!r} is not a service name")
    by_lower = {state.lower(): state for state in RELEASE_STATES}
    states = []
    for word in (params.get("state") or "").split(","):
        if not word.strip():
            continue
        if word.strip().lower() not in by_lower:
            raise Refused(400, f"unknown state {one_line(word, 40)!r}; expected one or more "
                               f"(comma-separated) of {', '.join(RELEASE_STATES)}")
        states.append(by_lower[word.strip().lower()])
    text = (params.get("limit") or "").strip()
    if text and not (text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
        raise Refused(400, f"limit must be a whole number from 1 to {MAX_LIMIT}, "
                           f"not {one_line(text, 20)!r}")
    return service, states, int(text) if text else DEFAULT_LIMIT


def request_body(body: bytes, required: tuple[str, ...],
                 optional: tuple[str, ...] = ()) -> dict[str, str]:
    """The operation's JSON object of one-line strings; Refused(400/413) otherwise."""
    if len(body) > MAX_BODY:
        raise Refused(413, f"body is larger than {MAX_BODY} bytes")
    try:
        data = parse_json_body(body)
    except ValueError as bad:
        raise Refused(400, str(bad)) from None
    fields = ", ".join(required + optional)
    if not isinstance(data, dict):
        raise Refused(400, f"body must be a JSON object with {fields}")
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise Refused(400, f"unknown field {unknown[0]!r}; expected {fields}")
    parsed: dict[str, str] = {}
    for name in required + optional:
        value = data.get(name)
        if value is None and name in optional:
            continue
        if not isinstance(value, str) or not value.strip():
            raise Refused(400, f"{name} is required: a non-empty string")
        if len(value) > MAX_REASON:
            raise Refused(400, f"{name} is longer than {MAX_REASON} characters")
        parsed[name] = one_line(value)
    return parsed


def operator(headers: Mapping[str, str], settings: Mapping[str, str] | None = None) -> str:
    """Who asks: App Service Authentication's principal name, else `anonymous`.

    The header is read only while App Service Authentication is on (it then strips the
    header from requests and sets it itself); otherwise anyone could name anyone."""
    lookup = {key.lower(): value for key, value in headers.items()}
    if not app_service_auth(settings):
        if any(key.startswith("x-ms-client-principal") for key in lookup):
            log.warning("sign-in headers ignored: App Service Authentication is off"
                        " (WEBSITE_AUTH_ENABLED is not true); the operator is %s", ANONYMOUS)
        return ANONYMOUS
    return one_line(lookup.get(PRINCIPAL_HEADER.lower()) or "", 256) or ANONYMOUS


def origin(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


def status_uri(base: str, release_id: str) -> str:
    return f"{base}/api/releases/{quote(release_id, safe=':')}"


# Showing ---------------------------------------------------------------------------------

def summary(row: ReleaseRecord, base: str) -> dict[str, Any]:
    """A list entry: the row without its stages, its kind and its link."""
    shown = row.to_dict()
    shown.pop("stages")
    return {**shown, "kind": operation_kind(row.release_id),
            "statusUri": status_uri(base, row.release_id)}


class ReleaseView:
    """`GET /api/releases/{releaseId}`: the ledger's row joined with Durable's status."""

    def __init__(self, client: df.DurableOrchestrationClient) -> None:
        self.client = client

    async def show(self, release_id: str, base: str) -> dict[str, Any]:
        unknown = Refused(404, f"no release or operation {one_line(release_id, 300)!r}")
        if not INSTANCE_ID.fullmatch(release_id):
            raise unknown
        ledger = app_ledger()
        row = await asyncio.to_thread(ledger.get_release, release_id)
        status = await durable_status(self.client, release_id)
        if status is not None and status.name not in SHOWN_ORCHESTRATIONS:
            status = None
        if row is None and status is None:
            raise unknown
        events = []
        if row is not None:
            events = [e for e in await asyncio.to_thread(ledger.events, row.service,
                                                         limit=SERVICE_EVENTS)
                      if e.release_id == release_id]
        custom = decoded(status.custom_status) if status is not None else None
        shown = row.to_dict() if row is not None else pending_row(release_id, status, custom)
        return {**shown, "kind": operation_kind(release_id),
                "statusUri": status_uri(base, release_id),
                "timeline": timeline(row, custom, events),
                "durable": durable_view(status, custom)}


def pending_row(release_id: str, status: Any, custom: Any) -> dict[str, Any]:
    """An instance whose first ledger write has not landed yet, from its custom status."""
    custom = custom if isinstance(custom, dict) else {}
    return {"releaseId": release_id, "service": custom.get("service"),
            "version": custom.get("version"), "digest": custom.get("digest"),
            "state": "Running" if status.runtime_status in ACTIVE else None,
            "createdAt": _iso(status.created_time), "updatedAt": _iso(status.last_updated_time),
            "environment": custom.get("environment"), "step": custom.get("step"),
            "reason": custom.get("reason"), "stages": {}}


def timeline(row: ReleaseRecord | None, custom: Any, events: list[Any]) -> list[dict[str, Any]]:
    """What happened, oldest first: registry events, orchestration steps, stage outcomes."""
    entries: list[tuple[datetime, dict[str, Any]]] = []

    def add(at: Any, source: str, environment: str | None, what: str) -> None:
        moment = as_utc(at)
        if moment is not None:
            entries.append((moment, {"at": moment.isoformat(), "source": source,
                                     "environment": environment, "what": what}))

    for event in events:
        what = f"{event.action} {event.repository}:{event.tag} via {event.source}: " \
               f"{event.outcome}" + (f" ({event.reason})" if event.reason else "")
        if event.deliveries > 1:  # the same event id again: counted on its row, outcome kept
            what += f" (delivered {event.deliveries} times)"
        add(event.received_at, "registry", None, what)
    history = custom.get("history") if isinstance(custom, dict) else None
    for step in history if isinstance(history, list) else []:
        if isinstance(step, dict):
            what = str(step.get("step"))
            if what == RETRIED and step.get("detail"):  # who, when and why
                what = str(step["detail"])
            add(step.get("at"), "orchestration", step.get("environment"), what)
    for environment, stage in (row.stages if row is not None else {}).items():
        add(stage.started, "ledger", environment, "stage started")
        if stage.finished is not None:
            add(stage.finished, "ledger", environment,
                f"stage {stage.state}" + (f": {stage.detail}" if stage.detail else ""))
    entries.sort(key=lambda entry: entry[0])
    return [entry for _, entry in entries]


def durable_view(status: Any, custom: Any) -> dict[str, Any] | None:
    if status is None:
        return None
    return {"name": status.name,
            "runtimeStatus": status.runtime_status.value if status.runtime_status else None,
            "customStatus": custom, "output": decoded(status.output),
            "createdTime": _iso(status.created_time),
            "lastUpdatedTime": _iso(status.last_updated_time)}


# Operations ------------------------------------------------------------------------------

class Operations:
    """Decides whether a rollback or redeploy may start, builds its input, starts it."""

    def __init__(self, client: df.DurableOrchestrationClient) -> None:
        self.client = client
        self.ledger = app_ledger()

    async def rollback(self, release_id: str, environment: str, reason: str,
                       by: str) -> Operation:
        release = await self.release(release_id)
        plan, policy = await self.plan(release)
        stage = stage_of(plan, environment)
        state = await asyncio.to_thread(self.ledger.environment_state, release.service,
                                        environment)
        current = state.current
        if current is None or current.release_id != release.release_id:
            now = f"{current.release_id} runs there" if current else "nothing is recorded there"
            raise Refused(409, f"{release_id} is not what runs in {environment} ({now}); "
                               "roll back the release that runs there")
        rows = await asyncio.to_thread(self.ledger.releases, release.service,
                                       limit=SERVICE_RELEASES)
        ids = await self.not_busy(release.service, environment, rows)
        target = previous_good(rows, environment, release)
        if target is None:
            raise Refused(409, f"no earlier good release of {release.service} in "
                               f"{environment} to roll back to (none other than {release_id} "
                               "is recorded there as deployed and verified)")
        number = next_operation_number([r.release_id for r in rows] + ids, release.service,
                                       environment)
        return Operation(
            operation_id=operation_id("rollback", release.service, environment, number),
            kind="rollback", service=release.service, stage=stage, by=by, reason=reason,
            release=Deployed(target.release_id, target.version, target.digest,
                             await self.image_of(target, plan, stage)),
            replaces=Deployed(release.release_id, release.version, release.digest,
                              current.image),
            policy=policy)

    async def redeploy(self, release_id: str, environment: str, reason: str,
                       by: str) -> Operation:
        release = await self.release(release_id)
        plan, policy = await self.plan(release)
        stage = stage_of(plan, environment)
        if not was_deployed(release, environment):
            stage_state = release.stages.get(environment)
            seen = f"its {environment} stage is {stage_state.state}" if stage_state \
                else f"it never reached {environment}"
            raise Refused(409, f"{release_id} was never deployed to {environment} ({seen}); "
                               "a redeploy puts back only what ran there and skips no gate")
        state = await asyncio.to_thread(self.ledger.environment_state, release.service,
                                        environment)
        rows = await asyncio.to_thread(self.ledger.releases, release.service,
                                       limit=SERVICE_RELEASES)
        ids = await self.not_busy(release.service, environment, rows)
        number = next_operation_number([r.release_id for r in rows] + ids, release.service,
                                       environment)
        replaces = None
        if state.current is not None:
            versions = {r.release_id: r.version for r in rows}
            replaces = Deployed(state.current.release_id,
                                versions.get(state.current.release_id, ""),
                                state.current.digest, state.current.image)
        return Operation(
            operation_id=operation_id("redeploy", release.service, environment, number),
            kind="redeploy", service=release.service, stage=stage, by=by, reason=reason,
            release=Deployed(release.release_id, release.version, release.digest,
                             plan.image_in(stage)),
            replaces=replaces, policy=policy)

    async def start(self, op: Operation, base: str) -> func.HttpResponse:
        try:
            await self.client.start_new(ORCHESTRATORS[op.kind], op.operation_id,
                                        op.to_input())
        except Exception:  # the SDK raises a bare Exception; a concurrent start is a 409
            if await durable_status(self.client, op.operation_id) is not None:
                raise Refused(409, f"operation {op.operation_id} was just started by another "
                                   "request") from None
            raise
        log.info("%s started by %s: %s", op.operation_id, op.by, op.describe())
        uri = status_uri(base, op.operation_id)
        body = {"id": op.operation_id, "kind": op.kind, "service": op.service,
                "environment": op.environment, "by": op.by, "reason": op.reason,
                "release": op.release.to_dict(),
                "replaces": op.replaces.to_dict() if op.replaces else None,
                "policy": op.policy, "statusUri": uri}
        return json_response(body, 202, {"Location": uri, "Retry-After": "5", **NO_STORE})

    async def release(self, release_id: str) -> ReleaseRecord:
        if not INSTANCE_ID.fullmatch(release_id):
            raise Refused(404, f"no release {one_line(release_id, 300)!r}")
        if operation_kind(release_id) != "release":
            raise Refused(400, f"{release_id} is an operation, not a release; name the "
                               "release it deployed")
        row = await asyncio.to_thread(self.ledger.get_release, release_id)
        if row is None:
            raise Refused(404, f"no release {release_id!r}")
        return row

    async def plan(self, release: ReleaseRecord) -> tuple[ReleasePlan, dict[str, Any]]:
        """The release's plan from its policy snapshot; the live policy once that is purged."""
        snapshot = await release_input(self.client, release.release_id)
        if snapshot is not None:
            policy = snapshot["policy"].get("policy") or {}
            return ReleasePlan.from_input(snapshot), {
                "from": "snapshot", "releaseId": release.release_id,
                "source": policy.get("source"), "sha256": policy.get("sha256")}
        live = await asyncio.to_thread(app_policy)
        try:
            service = live.service(release.service)
        except KeyError:
            raise Refused(409, f"{release.release_id} has no policy snapshot any more (its "
                               f"orchestration history was purged) and the live policy has "
                               f"no service {release.service}") from None
        spec = service.snapshot()
        log.warning("%s: policy snapshot purged; using the live policy %s", release.release_id,
                    live.source)
        plan = ReleasePlan(release_id=release.release_id, service=release.service,
                           version=release.version, digest=release.digest,
                           source_registry=spec["registry"], source_repository=spec["repository"],
                           stages=tuple(Stage(e["name"], e) for e in spec["environments"]))
        return plan, {"from": "live", "releaseId": release.release_id, "source": live.source,
                      "sha256": live.sha256}

    async def image_of(self, target: ReleaseRecord, plan: ReleasePlan, stage: Stage) -> str:
        """The target's image in the environment as its own snapshot placed it."""
        snapshot = await release_input(self.client, target.release_id)
        if snapshot is not None:
            own = ReleasePlan.from_input(snapshot)
            for own_stage in own.stages:
                if own_stage.name == stage.name:
                    return own.image_in(own_stage)
        return replace(plan, digest=target.digest).image_in(stage)

    async def not_busy(self, service: str, environment: str,
                       rows: list[ReleaseRecord]) -> list[str]:
        """Refused(409) while an operation or a release deploys there; else the op ids seen."""
        ids = []
        for kind in KINDS:
            for status in await self.client.get_status_by(
                    instance_id_prefix=operation_prefix(kind, service, environment)):
                ids.append(status.instance_id)
                if status.runtime_status in ACTIVE and operation_number(
                        status.instance_id, service, environment) is not None:
                    raise Refused(409, f"operation {status.instance_id} is still running in "
                                       f"{environment}; wait for it to finish")
        for row in rows:
            stage = row.stages.get(environment)
            if row.state == "Running" and stage is not None and stage.state == "Deploying":
                status = await durable_status(self.client, row.release_id)
                if status is not None and status.runtime_status in ACTIVE:
                    raise Refused(409, f"{row.release_id} is deploying to {environment} right "
                                       "now; wait for it to finish")
        return ids


class Retries:
    """Decides whether a failed release may run again, builds the run's input, starts it."""

    def __init__(self, client: df.DurableOrchestrationClient) -> None:
        self.client = client
        self.ledger = app_ledger()

    async def start(self, release_id: str, reason: str, by: str,
                    base: str) -> func.HttpResponse:
        release = await Operations(self.client).release(release_id)
        status = await durable_status(self.client, release.release_id, show_input=True)
        previous = decoded(status.input_) if status is not None else None
        output = decoded(status.output) if status is not None else None
        runtime = status.runtime_status.value if status is not None and \
            status.runtime_status is not None else None
        outcome = output.get("outcome") if isinstance(output, dict) else None
        policy = await asyncio.to_thread(app_policy)
        service = policy.services.get(release.service)
        rows = await asyncio.to_thread(self.ledger.releases, release.service,
                                       limit=SERVICE_RELEASES)
        refusal = retry_refusal(release, runtime, outcome, rows,
                                service.version_key if service else lambda _tag: None)
        if refusal is None and not (isinstance(previous, dict)
                                    and isinstance(previous.get("image"), dict)):
            refusal = (f"{release_id} has no orchestration input any more (its history was "
                       "purged), so who pushed its image is unknown; it is not run again")
        if refusal is None and service is None:
            refusal = f"the release policy has no service {release.service} any more"
        if refusal is None:
            refusal = policy_refusal(service, previous["image"])
        if refusal is not None:
            raise Refused(409, refusal)
        after = output if isinstance(output, dict) and output.get("outcome") else {
            "outcome": ended_as(release.state, runtime, outcome),
            "environment": release.environment, "reason": release.reason}
        data = retry_input(previous, service.snapshot(), by=by, reason=reason,
                           at=datetime.now(UTC), after=after)
        try:
            await self.client.start_new("release", release.release_id, data)
        except Exception:  # the SDK raises a bare Exception; a concurrent retry is a 409
            again = await durable_status(self.client, release.release_id)
            if again is not None and again.runtime_status in ACTIVE:
                raise Refused(409, f"{release_id} was just retried by another request") \
                    from None
            raise
        number = data["retries"][-1]["number"]
        log.info("%s retried (%d) by %s: %s", release.release_id, number, by, reason or "-")
        uri = status_uri(base, release.release_id)
        return json_response({"releaseId": release.release_id, "retry": number, "by": by,
                              "reason": reason or None, "after": data["retries"][-1]["after"],
                              "policy": {"source": policy.source, "sha256": policy.sha256},
                              "statusUri": uri},
                             202, {"Location": uri, "Retry-After": "5", **NO_STORE})


def stage_of(plan: ReleasePlan, environment: str) -> Stage:
    for stage in plan.stages:
        if stage.name == environment:
            return stage
    names = ", ".join(stage.name for stage in plan.stages)
    raise Refused(400, f"{plan.release_id} has no environment {one_line(environment, 80)!r} "
                       f"(its environments: {names})")


async def durable_status(client: df.DurableOrchestrationClient, instance_id: str,
                         show_input: bool = False) -> Any:
    """The instance's Durable status, or None when there is no such instance."""
    status = await client.get_status(instance_id, show_input=show_input)
    return status if status else None


async def release_input(client: df.DurableOrchestrationClient,
                        release_id: str) -> dict[str, Any] | None:
    """The release orchestration's input (the policy snapshot), None once purged."""
    status = await durable_status(client, release_id, show_input=True)
    data = decoded(status.input_) if status is not None else None
    if not isinstance(data, dict) or not isinstance(data.get("policy"), dict):
        return None
    return data


def _iso(value: Any) -> str | None:
    moment = as_utc(value)
    return moment.isoformat() if moment is not None else None
