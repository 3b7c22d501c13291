"""The approval book on Azurite and `check_approval`: a link counts once, only for approvers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient

from activities import approvals
from sandbox.azurite import Azurite
from shared.approvals.decisions import decision_data
from shared.ledger.approvals import ApprovalBook, ApprovalUse, use_key
from shared.ledger.store import Ledger

check_approval = approvals.check_approval.build().get_user_function()
AT = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
GATE = {"approvers": {"users": ["ann@example.com", "bob@example.com"], "groups": []},
        "requiredApprovals": 2, "deadlineSeconds": 3600}


@pytest.fixture
def book(azurite: Azurite, ledger: Ledger,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[ApprovalBook]:
    """The book beside the test's ledger, which the activity finds through the app settings."""
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("LEDGER_TABLE_PREFIX", ledger.prefix)
    book = ApprovalBook.beside(ledger)
    yield book
    TableServiceClient.from_connection_string(azurite.connection_string).delete_table(book.table)


def request(by: str = "ann@example.com", nonce: str | None = None, decision: str = "approve",
            pusher: str | None = None, release: str = "rel-1") -> dict:
    return {"releaseId": release, "environment": "prod", "gate": GATE, "pushedBy": pusher,
            "decision": decision_data(decision=decision, approver=by, identities=[by],
                                      nonce=nonce or uuid.uuid4().hex, at=AT,
                                      event_id=uuid.uuid4().hex, via="test",
                                      comment="fine by me")}


def test_insert_keeps_the_first_use_of_a_key(book: ApprovalBook) -> None:
    first = ApprovalUse(use_key("n1", "Ann@Example.com"), "e1", "approve", "Ann", AT,
                        comment="ok", counted=True)
    assert book.insert("rel-1", "prod", first) == first
    again = ApprovalUse(first.use_key, "e2", "reject", "Ann", AT, counted=True)
    assert book.insert("rel-1", "prod", again).event_id == "e1"
    assert book.find("rel-1", "prod", use_key("n1", "ann@example.com")) == first
    assert book.find("rel-1", "qa", first.use_key) is None
    assert book.uses("rel-1", "prod") == [first] and book.uses("rel-2", "prod") == []


def test_an_approver_counts_and_the_same_link_again_is_already_decided(
        book: ApprovalBook) -> None:
    first = request(nonce="link-ann-0000000001")
    verdict = check_approval(first)
    assert verdict == {"counted": True, "decision": "approve", "by": "ann@example.com",
                       "identity": "ann@example.com", "at": AT.isoformat(),
                       "comment": "fine by me", "reason": "ann@example.com is an approver of prod"}
    assert check_approval(first) == verdict  # the activity retried: the same answer
    replay = check_approval(request(nonce="link-ann-0000000001"))
    assert replay["counted"] is False and replay["duplicate"] is True
    assert replay["reason"] == f"already decided by ann@example.com at {AT.isoformat()}"
    assert [u.event_id for u in book.uses("rel-1", "prod")] == [first["decision"]["eventId"]]


@pytest.mark.parametrize(("by", "pusher", "reason"), [
    ("eve@example.com", None, "eve@example.com is not an approver of prod"),
    ("bob@example.com", "Bob@example.com", "pushed the image"),
])
def test_refusals_are_recorded_and_do_not_count(book: ApprovalBook, by: str,
                                                pusher: str | None, reason: str) -> None:
    verdict = check_approval(request(by=by, pusher=pusher, release="rel-refused"))
    assert verdict["counted"] is False and reason in verdict["reason"]
    (use,) = book.uses("rel-refused", "prod")
    assert (use.by, use.counted) == (by, False) and reason in (use.reason or "")


def test_a_malformed_decision_is_not_taken_and_not_stored(book: ApprovalBook) -> None:
    bad = request(release="rel-bad")
    bad["decision"]["decision"] = "maybe"
    assert check_approval(bad) == {"counted": False, "reason":
                                   "decision not taken: decision must be approve or reject"}
    assert book.uses("rel-bad", "prod") == []
