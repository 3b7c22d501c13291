"""What the approval page takes from a release's status: picked fields, nothing secret."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sandbox.policy_text import SERVICE, helm_qa_then_prod
from shared.approvals.desk import OpenGate, Who, decision_event, gate_view
from shared.approvals.identity import Principal
from shared.approvals.keys import app_keyring
from shared.approvals.page import render_decision
from shared.approvals.tokens import issue, verify
from shared.ingest.payloads import RegistryEvent
from shared.ingest.service import release_input
from shared.policy.loader import parse_policy
from shared.releases.plan import ReleasePlan
from shared.releases.status import ReleaseStatus
from shared.releases.waiting import ApprovalWait

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
KEY = "k" * 48
DIGEST = "sha256:" + "5e" * 32
WEBHOOK = "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual?sig=SECRET"


def opened() -> tuple[OpenGate, str]:
    keyring = app_keyring({"APPROVAL_SIGNING_KEY": KEY})
    token = issue(keyring, release_id="delivery-5e5e5e5e5e5e5e5e", environment="prod",
                  digest=DIGEST, scope="decide", expires_at=NOW + timedelta(days=3),
                  nonce="n" * 22, approver="ann@example.com")
    grant = verify(keyring, token, now=NOW, release_id="delivery-5e5e5e5e5e5e5e5e",
                   environment="prod", digest=DIGEST, decision="approve")
    link = f"http://approvals.test/api/releases/x/approvals/prod?token={token}"
    waiting = {"kind": "approval", "environment": "prod", "event": "approval:prod:1",
               "deadline": (NOW + timedelta(days=3)).isoformat(), "requiredApprovals": 1,
               "approvals": [], "approvalPage": None,
               "approvalLinks": [{"approver": "ann@example.com", "url": link}]}
    custom = {"releaseId": "delivery-5e5e5e5e5e5e5e5e", "service": "delivery",
              "version": "v3.1.0", "digest": DIGEST, "step": "approval",
              "environment": "prod", "waitingFor": waiting,
              "evidence": {"qa": "smoke: 200"}, "teamsWebhook": WEBHOOK,
              "history": [{"step": "deploy", "detail": WEBHOOK}]}
    who = Who("ann@example.com", ("ann@example.com",), (), "named in this link",
              Principal.local("ann@example.com"))
    plan = ReleasePlan(release_id="delivery-5e5e5e5e5e5e5e5e", service="delivery",
                       version="v3.1.0", digest=DIGEST, source_registry={"url": "r.example"},
                       source_repository="delivery", stages=(), pushed_by="ci@example.com")
    status = ReleaseStatus.from_dict(custom)
    assert isinstance(status.waiting_for, ApprovalWait)
    gate = OpenGate("delivery-5e5e5e5e5e5e5e5e", "prod", grant, who, "n" * 22 + ":ann",
                    status.waiting_for, status, plan, "ci@example.com")
    return gate, token


def test_the_page_shows_the_gate_and_nothing_else_from_the_status() -> None:
    gate, token = opened()
    html = render_decision(gate_view(gate, None, None), csrf="c" * 43, now=NOW)
    assert "v3.1.0" in html and DIGEST in html and "smoke: 200" in html
    assert "ci@example.com" in html
    for secret in (token, token.split(".")[1], KEY, gate.grant.nonce, "SECRET", "logic.azure",
                   "approvals.test", gate.grant.key_id):
        assert secret not in html


def test_decision_event_carries_the_contract_fields() -> None:
    gate, _ = opened()
    data = decision_event(gate, "approve", "ship it", "e" * 32, NOW, "page")
    assert data == {"eventId": "e" * 32, "nonce": "n" * 22, "decision": "approve",
                    "approver": "ann@example.com", "identities": ["ann@example.com"],
                    "groups": [], "comment": "ship it", "at": NOW.isoformat(), "via": "page"}


CHART_DIGEST = "sha256:" + "c1" * 32


def helm_gate(helm: dict[str, object]) -> OpenGate:
    """`opened()`'s gate for a release of Helm targets (QA, then production's gate) whose
    status has `helm`."""
    gate, _ = opened()
    text = helm_qa_then_prod("https://r.example", "ca.pem", "delivery", "charts/delivery")
    event = RegistryEvent(event_id="e1", source="test", action="push", registry="r.example",
                          repository="delivery", tag="v3.1.0", digest=DIGEST)
    plan = ReleasePlan.from_input(release_input(
        parse_policy(text, source="policy.yaml").service(SERVICE), event, gate.release_id, NOW))
    status = ReleaseStatus.from_dict({**gate.status.to_dict(), "helm": helm})
    return replace(gate, plan=plan, status=status)


def test_the_page_shows_the_chart_that_goes_on_beside_the_image() -> None:
    gate = helm_gate({"qa": {"chart": "delivery", "version": "3.1.0", "digest": CHART_DIGEST,
                             "revision": 4}})
    view = gate_view(gate, None, None)
    assert view.chart is not None
    assert (view.chart.name, view.chart.version, view.chart.digest, view.chart.environment) == (
        "delivery", "3.1.0", CHART_DIGEST, "qa")
    html = render_decision(view, csrf="c" * 43, now=NOW)
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert f"Image digest {DIGEST} Helm chart delivery 3.1.0 {CHART_DIGEST} (as deployed in" \
           " qa)" in text


def test_no_chart_row_without_a_helm_environment_before_the_gate() -> None:
    gate, _ = opened()  # Deployment targets: no `helm` in the status
    html = render_decision(gate_view(gate, None, None), csrf="c" * 43, now=NOW)
    assert "Helm chart" not in html
    prod_only = helm_gate({"prod": {"chart": "delivery", "version": "3.0.0",
                                    "digest": CHART_DIGEST, "revision": 2}})
    assert gate_view(prod_only, None, None).chart is None  # the gate's own, not before it
