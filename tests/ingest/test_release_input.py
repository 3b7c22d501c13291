"""The release orchestration's input as ingestion builds it: the image, and who pushed it."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.ingest.payloads import RegistryEvent
from shared.ingest.service import release_input
from shared.policy.loader import parse_policy
from tests.policy.policy_samples import ONE_QA_SERVICE

POLICY = ONE_QA_SERVICE
DIGEST = "sha256:" + "a" * 64
AT = datetime(2026, 11, 22, 4, 10, tzinfo=UTC)


def push(actor: str | None) -> RegistryEvent:
    return RegistryEvent("e1", "acr-webhook", "push", "myacr.azurecr.io", "delivery",
                         tag="v1.4.2", digest=DIGEST, actor=actor)


def test_the_image_carries_who_pushed_it_when_known() -> None:
    service = parse_policy(POLICY).service("delivery")
    image = release_input(service, push("ci-bot"), "delivery-aaaa", AT)["image"]
    assert image == {"registry": "myacr.azurecr.io", "repository": "delivery", "tag": "v1.4.2",
                     "digest": DIGEST, "reference": f"myacr.azurecr.io/delivery@{DIGEST}",
                     "pushedBy": "ci-bot"}


def test_an_unknown_pusher_leaves_pushed_by_out() -> None:
    service = parse_policy(POLICY).service("delivery")
    data = release_input(service, push(None), "delivery-aaaa", AT)
    assert "pushedBy" not in data["image"]
    assert data["trigger"] == {"eventId": "e1", "source": "acr-webhook",
                               "receivedAt": AT.isoformat()}


def test_a_tag_that_moved_on_reaches_the_approval_request() -> None:
    """The registry's word on the tag travels with the image to the gate's cards."""
    from dataclasses import replace

    from shared.releases.plan import ReleasePlan

    service = parse_policy(POLICY).service("delivery")
    for tag_current, moved in ((False, True), (True, False), (None, False)):
        data = release_input(service, replace(push("ci-bot"), tag_current=tag_current),
                             "delivery-aaaa", AT)
        plan = ReleasePlan.from_input(data)
        assert plan.tag_moved is moved
        request = plan.approval_request(plan.stages[0], AT, None)
        assert request["tagMoved"] is moved
