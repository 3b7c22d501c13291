"""The release orchestration's input as ingestion builds it: the image, and who pushed it."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.ingest.payloads import RegistryEvent
from shared.ingest.service import release_input
from shared.policy.loader import parse_policy

POLICY = """\
version: 1
registries:
  acr: {url: myacr.azurecr.io, auth: anonymous}
services:
  delivery:
    registry: acr
    repository: delivery
    environments:
      - name: qa
        target:
          cluster: {name: qa, kubeconfigSecret: qa-kubeconfig}
          namespace: delivery
          deployment: delivery
          container: app
"""
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
