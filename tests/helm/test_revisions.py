"""What Helm recorded, read back: revisions, our release label, the Deployments of a
manifest (pure)."""

from __future__ import annotations

from shared.helm.revisions import (
    RELEASE_ID_LABEL,
    Revision,
    deployed,
    deployments_in,
    latest,
    made_by,
    release_label,
)


def revision(number: int, status: str, release_id: str | None = None) -> Revision:
    labels = {"owner": "helm", **({RELEASE_ID_LABEL: release_id} if release_id else {})}
    return Revision.from_sdk({"name": "web", "revision": number, "status": status,
                              "chart_name": "web", "chart_version": "1.0.0",
                              "labels": labels})


def test_a_release_id_is_its_own_label_unless_kubernetes_would_refuse_it() -> None:
    assert release_label("delivery-0123456789abcdef") == "delivery-0123456789abcdef"
    long = "a-service-with-a-very-long-name-that-goes-on-and-on-0123456789abcdef"
    for odd in (long, "rollback:delivery:prod:1", "-leading"):
        label = release_label(odd)
        assert label.startswith("r-") and len(label) <= 63 and label == release_label(odd)
    assert release_label(long) != release_label(long + "x")


def test_the_newest_good_revision_of_a_release_and_the_running_one() -> None:
    history = [revision(1, "superseded", "r-1"), revision(2, "superseded", "r-2"),
               revision(3, "failed", "r-3"), revision(4, "deployed", "r-1"),
               revision(5, "pending-upgrade", "r-3")]
    assert made_by(history, "r-1") == history[3]
    assert made_by(history, "r-3") is None  # it never ran: failed, then pending
    assert deployed(history) == history[3]
    assert latest(history) == history[4] and history[4].pending
    assert made_by(history, "unknown") is None and latest([]) is None


def test_the_deployments_of_a_rendered_manifest() -> None:
    manifest = """\
---
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: example.com/v1
kind: Deployment
metadata: {name: not-apps}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-worker}
"""
    assert deployments_in(manifest) == ["web", "web-worker"]
    assert deployments_in("") == []
