"""What the ledger stores, and how each record maps to a table entity. Pure, no I/O.

Keys are encoded so that any id or name is a valid PartitionKey/RowKey (`/ \\ # ?`, control
characters and `%` are percent-encoded; a leading `_` too, so `_unmatched` stays reserved).
Entities also carry the raw values, which is what records are read back from.
A release row is written whole (`ReleaseRecord.to_entity`, stages as JSON) or merged one step
at a time without a read (`progress_entity`, stages as `Stage_<env>_…` columns);
`ReleaseRecord.from_entity` reads either and both.
An event row is inserted once; a redelivery of the same event id merges `redelivery_entity`
into it (one more delivery, its time), so the row keeps what the event's first delivery did.
Times are stored as UTC; a naive datetime is taken to be UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

OUTCOMES = ("started", "duplicate", "ignored", "rejected")
RELEASE_STATES = (
    "Running", "WaitingForApproval", "Completed", "RolledBack", "Rejected", "Expired",
    "Superseded", "Failed",
)
ACTIVE_STATES = ("Running", "WaitingForApproval")
UNMATCHED = "_unmatched"
MAX_KEY_CHARS = 512
# Tokens of the latest writes kept on an event row: a write retried after its reply was lost
# finds its own token there instead of counting its delivery twice.
KEPT_DELIVERY_TOKENS = 8


def table_key(value: str, what: str) -> str:
    """`value` as a PartitionKey/RowKey: disallowed characters percent-encoded, reversibly."""
    if not value:
        raise ValueError(f"{what} is empty")
    encoded = "".join(
        f"%{ord(char):02X}" if _needs_escape(char) or (index == 0 and char == "_") else char
        for index, char in enumerate(value)
    )
    if len(encoded) > MAX_KEY_CHARS:
        raise ValueError(f"{what} is longer than {MAX_KEY_CHARS} characters as a table key")
    return encoded


def event_partition(service: str | None) -> str:
    """Events of a service share its partition; events matching no service share `_unmatched`."""
    return UNMATCHED if service is None else table_key(service, "service")


def _needs_escape(char: str) -> bool:
    code = ord(char)
    return char in "/\\#?%" or code < 0x20 or 0x7F <= code <= 0x9F


def utc(moment: datetime) -> datetime:
    """`moment` in UTC as a plain datetime (naive input is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    # The SDK returns a datetime subclass; hand out plain datetimes.
    return datetime.combine(moment.date(), moment.timetz())


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _from_iso(text: str | None) -> datetime | None:
    return None if text is None else utc(datetime.fromisoformat(text))


@dataclass(frozen=True)
class EventRecord:
    """One received registry event and what became of it."""

    event_id: str
    received_at: datetime
    source: str
    action: str
    registry: str
    repository: str
    tag: str | None
    digest: str | None
    service: str | None
    outcome: str
    reason: str = ""
    release_id: str | None = None
    deliveries: int = 1  # how often this event id arrived; the row keeps the first outcome
    last_delivered_at: datetime | None = None  # None: `received_at`
    tag_current: bool | None = None  # the registry said the tag still names the digest

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"event outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}")
        if self.deliveries < 1:
            raise ValueError(f"event deliveries must be at least 1, not {self.deliveries}")
        table_key(self.event_id, "event id")
        object.__setattr__(self, "received_at", utc(self.received_at))
        object.__setattr__(self, "last_delivered_at", utc(self.last_delivered_at or
                                                          self.received_at))

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": event_partition(self.service),
            "RowKey": table_key(self.event_id, "event id"),
            "EventId": self.event_id, "ReceivedAt": self.received_at, "Source": self.source,
            "Action": self.action, "Registry": self.registry, "Repository": self.repository,
            "Tag": self.tag, "Digest": self.digest, "Service": self.service,
            "Outcome": self.outcome, "Reason": self.reason, "ReleaseId": self.release_id,
            "Deliveries": self.deliveries, "LastDeliveredAt": self.last_delivered_at,
            "TagCurrent": self.tag_current,
        }

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> EventRecord:
        """A row as inserted, counted by redeliveries, or written before they were counted."""
        return cls(
            event_id=entity["EventId"], received_at=entity["ReceivedAt"],
            source=entity.get("Source", ""), action=entity.get("Action", ""),
            registry=entity.get("Registry", ""), repository=entity.get("Repository", ""),
            tag=entity.get("Tag"), digest=entity.get("Digest"), service=entity.get("Service"),
            outcome=entity["Outcome"], reason=entity.get("Reason", ""),
            release_id=entity.get("ReleaseId"), deliveries=entity.get("Deliveries") or 1,
            last_delivered_at=entity.get("LastDeliveredAt"),
            tag_current=entity.get("TagCurrent"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (camelCase), as activities return it."""
        return {
            "eventId": self.event_id, "receivedAt": self.received_at.isoformat(),
            "source": self.source, "action": self.action, "registry": self.registry,
            "repository": self.repository, "tag": self.tag, "digest": self.digest,
            "service": self.service, "outcome": self.outcome, "reason": self.reason,
            "releaseId": self.release_id, "deliveries": self.deliveries,
            "lastDeliveredAt": _iso(self.last_delivered_at),
            "tagCurrent": self.tag_current,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventRecord:
        return cls(
            event_id=data["eventId"], received_at=datetime.fromisoformat(data["receivedAt"]),
            source=data["source"], action=data["action"], registry=data["registry"],
            repository=data["repository"], tag=data.get("tag"), digest=data.get("digest"),
            service=data.get("service"), outcome=data["outcome"],
            reason=data.get("reason") or "", release_id=data.get("releaseId"),
            deliveries=data.get("deliveries") or 1,
            last_delivered_at=_from_iso(data.get("lastDeliveredAt")),
            tag_current=data.get("tagCurrent"),
        )


def event_entity(event: EventRecord, token: str) -> dict[str, Any]:
    """The event row's first write; `token` lets a retried write recognise its own row."""
    return {**event.to_entity(), "DeliveryTokens": token}


def delivery_tokens(entity: Mapping[str, Any]) -> list[str]:
    """The tokens of the latest writes to an event row (oldest first)."""
    return str(entity.get("DeliveryTokens") or "").split()


def redelivery_entity(existing: Mapping[str, Any], event: EventRecord,
                      token: str) -> dict[str, Any]:
    """What one more delivery of an event merges into its row (read with its ETag).

    The count and the last delivery time change; outcome, reason and release stay the first
    delivery's, except that a `started` outcome replaces another one: the delivery that
    started the release can record after a redelivery that overtook it.
    """
    before = EventRecord.from_entity(existing)
    entity: dict[str, Any] = {
        "PartitionKey": existing["PartitionKey"], "RowKey": existing["RowKey"],
        "Deliveries": before.deliveries + 1,
        "LastDeliveredAt": max(before.last_delivered_at or before.received_at,
                               event.received_at),
        "DeliveryTokens": " ".join(
            [*delivery_tokens(existing), token][-KEPT_DELIVERY_TOKENS:]),
    }
    if event.outcome == "started" and before.outcome != "started":
        entity.update(Outcome=event.outcome, Reason=event.reason, ReleaseId=event.release_id,
                      ReceivedAt=min(before.received_at, event.received_at))
    return entity


@dataclass(frozen=True)
class DigestClaim:
    """The first claim of an image digest for a service: which release and event made it, and
    which delivery's start of that release was answered `started` (None until one was)."""

    service: str
    digest: str
    release_id: str
    version: str
    event_id: str
    claimed_at: datetime
    started_by: str | None = None

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> DigestClaim:
        return cls(
            service=entity["Service"], digest=entity["Digest"], release_id=entity["ReleaseId"],
            version=entity.get("Version", ""), event_id=entity.get("EventId", ""),
            claimed_at=utc(entity["ClaimedAt"]), started_by=entity.get("StartedBy") or None,
        )


def claim_entity(
    service: str, digest: str, release_id: str, version: str, event_id: str,
    claimed_at: datetime, token: str,
) -> dict[str, Any]:
    """The Digests row; `token` tells our own write apart from someone else's on a retry."""
    return {
        "PartitionKey": table_key(service, "service"), "RowKey": table_key(digest, "digest"),
        "Service": service, "Digest": digest, "ReleaseId": release_id, "Version": version,
        "EventId": event_id, "ClaimedAt": utc(claimed_at), "ClaimToken": token,
    }


def start_mark_entity(service: str, digest: str, event_id: str, started_at: datetime,
                      token: str) -> dict[str, Any]:
    """The columns that mark a claim's release as started by one delivery (merged with the
    claim row's ETag, so only the first mark lands); `token` tells a retried mark its own."""
    return {
        "PartitionKey": table_key(service, "service"), "RowKey": table_key(digest, "digest"),
        "StartedBy": event_id, "StartedAt": utc(started_at), "StartToken": token,
    }


@dataclass(frozen=True)
class StageState:
    """One environment's progress within a release."""

    state: str
    started: datetime | None = None
    finished: datetime | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "started", _utc_or_none(self.started))
        object.__setattr__(self, "finished", _utc_or_none(self.finished))

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "started": _iso(self.started),
                "finished": _iso(self.finished), "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageState:
        return cls(state=data["state"], started=_from_iso(data.get("started")),
                   finished=_from_iso(data.get("finished")), detail=data.get("detail"))


STAGE_COLUMN = "Stage_"
T_MIN = datetime.min.replace(tzinfo=UTC)
PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def column_key(name: str) -> str:
    """`name` as part of a column name: itself when letters and digits, else `0` + hex."""
    return name if PLAIN_NAME.fullmatch(name) else "0" + name.encode().hex()


def _from_column_key(key: str) -> str:
    return bytes.fromhex(key[1:]).decode() if key.startswith("0") else key


def _blank_none(value: Any) -> Any:
    """A merge skips None, which would keep an old value: blank it with "" instead."""
    return "" if value is None else value


def progress_entity(record: Mapping[str, Any]) -> dict[str, Any]:
    """The columns one step of a release (the `record_release` activity's input) merges into
    its row, without reading it first.

    The release's own fields are replaced ("" for none). A step in an environment sets that
    stage's `Stage_<env>_State`, `_Finished` and `_Detail` columns and a timestamp column
    per stage state (`_At_<state>`): the stage started at the earliest of them, as no stage
    returns to a state it left. The creation time is not merged: the row's first write
    (`open_entity`) sets it.
    """
    state = record["state"]
    if state not in RELEASE_STATES:
        raise ValueError(f"release state {state!r} is not one of {', '.join(RELEASE_STATES)}")
    at = utc(datetime.fromisoformat(record["updatedAt"]))
    entity: dict[str, Any] = {
        "PartitionKey": table_key(record["service"], "service"),
        "RowKey": table_key(record["releaseId"], "release id"),
        "ReleaseId": record["releaseId"], "Service": record["service"],
        "Version": record["version"], "Digest": record["digest"], "State": state,
        "UpdatedAt": at, "Environment": _blank_none(record.get("environment")),
        "Step": _blank_none(record.get("step")), "Reason": _blank_none(record.get("reason")),
    }
    environment, stage_state = record.get("environment"), record.get("stageState")
    if environment and stage_state:
        column = f"{STAGE_COLUMN}{column_key(environment)}_"
        entity.update({
            f"{column}State": stage_state,
            f"{column}Finished": at if record.get("stageFinished") else "",
            f"{column}Detail": _blank_none(record.get("reason")),
            f"{column}At_{column_key(stage_state)}": at,
        })
    return entity


def open_entity(record: Mapping[str, Any]) -> dict[str, Any]:
    """The release row's first write: its progress and its creation time."""
    entity = progress_entity(record)
    entity["CreatedAt"] = entity["UpdatedAt"]
    return entity


def _merged_stages(entity: Mapping[str, Any]) -> dict[str, StageState]:
    """Stages of the `Stages` JSON (written whole), updated by the merged stage columns."""
    stages = _stages_from_dict(json.loads(entity.get("Stages") or "{}"))
    columns: dict[str, dict[str, Any]] = {}
    for name, value in entity.items():
        if name.startswith(STAGE_COLUMN):
            key, _, field_name = name[len(STAGE_COLUMN):].partition("_")
            column = columns.setdefault(_from_column_key(key), {"times": []})
            if field_name.startswith("At_"):
                column["times"].append(utc(value))
            else:
                column[field_name] = value
    merged = []
    for environment, fields in columns.items():
        earlier = stages.get(environment)
        times = fields["times"] + ([earlier.started] if earlier and earlier.started else [])
        finished = fields.get("Finished")
        merged.append((environment, StageState(
            state=fields.get("State") or (earlier.state if earlier else ""),
            started=min(times) if times else None,
            finished=finished if isinstance(finished, datetime) else None,
            detail=fields.get("Detail") or None)))
    # A stage already in the JSON keeps its place; new ones follow in the order they started.
    for environment, stage in sorted(merged, key=lambda item: item[1].started or T_MIN):
        stages[environment] = stage
    return stages


@dataclass(frozen=True)
class ReleaseRecord:
    """A release of one image digest of a service, its overall state and its stages."""

    release_id: str
    service: str
    version: str
    digest: str
    state: str
    created_at: datetime
    updated_at: datetime
    environment: str | None = None
    step: str | None = None
    reason: str | None = None
    stages: dict[str, StageState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state not in RELEASE_STATES:
            raise ValueError(
                f"release state {self.state!r} is not one of {', '.join(RELEASE_STATES)}"
            )
        table_key(self.release_id, "release id")
        table_key(self.service, "service")
        object.__setattr__(self, "created_at", utc(self.created_at))
        object.__setattr__(self, "updated_at", utc(self.updated_at))
        object.__setattr__(self, "stages", dict(self.stages))

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": table_key(self.service, "service"),
            "RowKey": table_key(self.release_id, "release id"),
            "ReleaseId": self.release_id, "Service": self.service, "Version": self.version,
            "Digest": self.digest, "State": self.state, "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at, "Environment": self.environment, "Step": self.step,
            "Reason": self.reason, "Stages": json.dumps(self._stages_dict()),
        }

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> ReleaseRecord:
        """A row written whole (`to_entity`), merged step by step (`progress_entity`), or both."""
        stages = _merged_stages(entity)
        created = entity.get("CreatedAt")
        if not isinstance(created, datetime):  # its first write was lost: the earliest seen
            created = min([utc(entity["UpdatedAt"])] + [
                stage.started for stage in stages.values() if stage.started])
        return cls(
            release_id=entity["ReleaseId"], service=entity["Service"],
            version=entity.get("Version", ""), digest=entity.get("Digest", ""),
            state=entity["State"], created_at=created,
            updated_at=entity["UpdatedAt"], environment=entity.get("Environment") or None,
            step=entity.get("Step") or None, reason=entity.get("Reason") or None,
            stages=stages,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (camelCase), as activities return it."""
        return {
            "releaseId": self.release_id, "service": self.service, "version": self.version,
            "digest": self.digest, "state": self.state,
            "createdAt": self.created_at.isoformat(), "updatedAt": self.updated_at.isoformat(),
            "environment": self.environment, "step": self.step, "reason": self.reason,
            "stages": self._stages_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReleaseRecord:
        return cls(
            release_id=data["releaseId"], service=data["service"], version=data["version"],
            digest=data["digest"], state=data["state"],
            created_at=datetime.fromisoformat(data["createdAt"]),
            updated_at=datetime.fromisoformat(data["updatedAt"]),
            environment=data.get("environment"), step=data.get("step"),
            reason=data.get("reason"), stages=_stages_from_dict(data.get("stages") or {}),
        )

    def _stages_dict(self) -> dict[str, dict[str, Any]]:
        return {env: stage.to_dict() for env, stage in self.stages.items()}


def _stages_from_dict(data: Mapping[str, Any]) -> dict[str, StageState]:
    return {env: StageState.from_dict(stage) for env, stage in data.items()}


@dataclass(frozen=True)
class DeployedChart:
    """The Helm chart a deployment runs (Helm targets only): its name, version and digest
    (None when a revision was put back by `helm rollback`, which knows no digest)."""

    name: str
    version: str
    digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "digest": self.digest}

    @classmethod
    def from_dict(cls, data: Any) -> DeployedChart | None:
        """The chart of a `record_deployment` request (extra keys ignored); None unless it
        names the chart and its version as text (the digest is text, or none)."""
        if not isinstance(data, Mapping):
            return None
        name, version, digest = (data.get(key) for key in ("name", "version", "digest"))
        if not all(isinstance(value, str) and value for value in (name, version)):
            return None
        return cls(str(name), str(version),
                   str(digest) if isinstance(digest, str) and digest else None)


def helm_revision(value: Any) -> int | None:
    """A Helm revision (a positive integer); None for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


@dataclass(frozen=True)
class Deployment:
    """A release running in an environment: what `current` and `last good` point to; a Helm
    target's also names its chart and Helm revision (None for other targets and old rows)."""

    release_id: str
    digest: str
    image: str
    since: datetime
    chart: DeployedChart | None = None
    revision: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"releaseId": self.release_id, "digest": self.digest,
                                "image": self.image, "since": self.since.isoformat()}
        if self.chart is not None:  # Helm targets only: other deployments keep their keys
            data["chart"] = self.chart.to_dict()
        if self.revision is not None:
            data["revision"] = self.revision
        return data


@dataclass(frozen=True)
class EnvironmentState:
    """Per service and environment: the current release and the last good one (rollback target)."""

    service: str
    environment: str
    current: Deployment | None = None
    last_good: Deployment | None = None

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> EnvironmentState:
        return cls(
            service=entity["Service"], environment=entity["Environment"],
            current=_deployment(entity, "Current"), last_good=_deployment(entity, "Good"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "environment": self.environment,
            "current": self.current.to_dict() if self.current else None,
            "lastGood": self.last_good.to_dict() if self.last_good else None,
        }


def deployment_entity(
    slot: str, service: str, environment: str, release_id: str, digest: str, image: str,
    since: datetime, *, chart: DeployedChart | None = None, revision: int | None = None,
) -> dict[str, Any]:
    """The columns of one slot (`Current` or `Good`) of an Environments row, for a merge.

    The chart and revision columns are always written ("" for none), so a deployment
    without a chart never shows the chart of the one it replaced."""
    return {
        "PartitionKey": table_key(service, "service"),
        "RowKey": table_key(environment, "environment"),
        "Service": service, "Environment": environment,
        f"{slot}ReleaseId": release_id, f"{slot}Digest": digest, f"{slot}Image": image,
        f"{slot}Since": utc(since),
        f"{slot}ChartName": chart.name if chart else "",
        f"{slot}ChartVersion": chart.version if chart else "",
        f"{slot}ChartDigest": chart.digest or "" if chart else "",
        f"{slot}Revision": _blank_none(revision),
    }


def _deployment(entity: Mapping[str, Any], slot: str) -> Deployment | None:
    release_id = entity.get(f"{slot}ReleaseId")
    if release_id is None:
        return None
    return Deployment(
        release_id=release_id, digest=entity.get(f"{slot}Digest", ""),
        image=entity.get(f"{slot}Image", ""), since=utc(entity[f"{slot}Since"]),
        chart=DeployedChart.from_dict({key: entity.get(f"{slot}Chart{key.capitalize()}")
                                       for key in ("name", "version", "digest")}),
        revision=helm_revision(entity.get(f"{slot}Revision")),
    )
