"""What the release view makes of a ledger row and a Durable status: timeline, pending row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.ledger.records import EventRecord, ReleaseRecord, StageState
from shared.releases.status import ReleaseStatus
from shared.releases.view import (
    durable_view,
    helm_view,
    pending_row,
    summary,
    timeline,
    unknown,
)
from triggers.durable_adapter import Instance

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
DIGEST = "sha256:" + "1" * 64


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(minutes: int, outcome: str = "started", deliveries: int = 1) -> EventRecord:
    return EventRecord(event_id=f"e{minutes}", received_at=at(minutes), source="webhook",
                       action="push", registry="r.example", repository="delivery",
                       tag="v1.0.0", digest=DIGEST, service="delivery", outcome=outcome,
                       release_id="d-1", deliveries=deliveries)


def instance(runtime: str | None, custom: object = None) -> Instance:
    return Instance(instance_id="d-1", name="release", runtime=runtime, input=None,
                    output={"outcome": "Completed"}, custom_status=custom, created=at(0),
                    updated=at(9))


def test_the_timeline_merges_registry_orchestration_and_ledger_oldest_first() -> None:
    row = ReleaseRecord(release_id="d-1", service="delivery", version="v1.0.0", digest=DIGEST,
                        state="Running", created_at=at(0), updated_at=at(5),
                        stages={"qa": StageState("Healthy", started=at(2), finished=at(4),
                                                 detail="smoke: 200")})
    custom = {"history": [
        {"step": "deploy", "at": at(3).isoformat(), "environment": "qa"},
        {"step": "retried", "at": at(6).isoformat(), "detail": "retry 1 by ann: key set"},
        {"step": "no time"}, "not a step"]}
    assert [(e["source"], e["environment"], e["what"])
            for e in timeline(row, ReleaseStatus.from_dict(custom), [event(1, deliveries=2)])] \
        == [
        ("registry", None, "push delivery:v1.0.0 via webhook: started (delivered 2 times)"),
        ("ledger", "qa", "stage started"),
        ("orchestration", "qa", "deploy"),
        ("ledger", "qa", "stage Healthy: smoke: 200"),
        ("orchestration", None, "retry 1 by ann: key set")]


def test_the_timeline_of_an_instance_without_row_or_history_is_empty() -> None:
    assert timeline(None, ReleaseStatus.from_dict(None), []) == []
    assert timeline(None, ReleaseStatus.from_dict({"history": "no list"}), []) == []


def test_a_pending_instance_is_shown_from_its_custom_status() -> None:
    custom = {"service": "delivery", "version": "v1.0.0", "digest": DIGEST, "step": "qa",
              "environment": "qa", "reason": None}
    shown = pending_row("d-1", instance("Pending", custom), ReleaseStatus.from_dict(custom))
    assert shown == {"releaseId": "d-1", "service": "delivery", "version": "v1.0.0",
                     "digest": DIGEST, "state": "Running", "createdAt": at(0).isoformat(),
                     "updatedAt": at(9).isoformat(), "environment": "qa", "step": "qa",
                     "reason": None, "stages": {}}
    assert pending_row("d-1", instance("Failed"), ReleaseStatus.from_dict("text"))["state"] \
        is None


def test_durable_status_as_shown() -> None:
    assert durable_view(None, None) is None
    assert durable_view(instance("Completed"), {"step": "done"}) == {
        "name": "release", "runtimeStatus": "Completed", "customStatus": {"step": "done"},
        "output": {"outcome": "Completed"}, "createdTime": at(0).isoformat(),
        "lastUpdatedTime": at(9).isoformat()}


def test_a_list_entry_and_an_unknown_id() -> None:
    row = ReleaseRecord(release_id="rollback:delivery:prod:1", service="delivery",
                        version="v1.0.0", digest=DIGEST, state="Completed", created_at=at(0),
                        updated_at=at(1), stages={"prod": StageState("Healthy")})
    entry = summary(row, lambda rid: f"https://app/api/releases/{rid}")
    assert "stages" not in entry and entry["kind"] == "rollback"
    assert entry["statusUri"] == "https://app/api/releases/rollback:delivery:prod:1"
    refusal = unknown("x\n" * 200)
    assert refusal.kind == "not-found" and "\n" not in refusal.reason
    assert len(refusal.reason) < 340


def test_helm_environments_are_shown_only_for_helm_targets() -> None:
    chart = {"chart": "delivery", "version": "1.0.0", "digest": "sha256:" + "c" * 64,
             "revision": 3}
    custom = {"helm": {"qa": chart, "prod": {**chart, "revision": "3", "values": "secret"}}}
    assert helm_view(ReleaseStatus.from_dict(custom)) == {"helm": {
        "qa": chart, "prod": {**chart, "revision": None}}}
    assert helm_view(ReleaseStatus.from_dict({"step": "done"})) == {}
    assert helm_view(ReleaseStatus.from_dict({"helm": "not a mapping"})) == {}
