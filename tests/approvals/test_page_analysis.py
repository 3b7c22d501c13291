"""The approval page shows the analysis of the environments before its gate: each round's
verdict and the last round's numbers, read from the ledger's evidence rounds (Azurite)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sandbox.azurite import Azurite
from shared.approvals.desk import Desk
from shared.approvals.keys import app_keyring
from shared.approvals.page import render_decision
from shared.deploy.evidence import Evidence, Measurement, Verdict
from shared.instances import Instance
from shared.ledger import Ledger
from shared.ledger.approvals import ApprovalBook
from shared.ledger.evidence import EvidenceBook
from tests.approvals.test_page_view import KEY, NOW, helm_gate, opened

SECRET = "Bearer eyJ-provider-token"


class NoDurable:
    """The page's view asks Durable nothing (the gate was opened already)."""

    async def status(self, instance_id: str, show_input: bool = False) -> Instance | None:
        raise AssertionError("the view reads no Durable status")

    async def raise_event(self, instance_id: str, event: str, payload: Any) -> None:
        raise AssertionError("the view raises no event")


def desk(ledger: Ledger) -> Desk:
    return Desk(NoDurable(), "token", app_keyring({"APPROVAL_SIGNING_KEY": KEY}),
                ApprovalBook.beside(ledger), lambda: ledger,
                lambda: EvidenceBook.beside(ledger).rounds)


def health(value: float, verdict: Verdict = Verdict.PASSED, said: str = "") -> Measurement:
    return Measurement("health", verdict, said or f"{int(value * 4)} of 4 requests passed",
                       value)


def page_text(html: str) -> str:
    """The page's words: line breaks and cells apart, inline tags (spans) dropped."""
    spaced = re.sub(r"<(br|/?t[dhr])\b[^>]*>", " ", html)
    return " ".join(re.sub(r"<[^>]+>", "", spaced).split())


def test_the_gate_shows_each_round_verdict_and_the_last_round_numbers(ledger: Ledger) -> None:
    gate = helm_gate({})  # QA, then production's gate
    book = EvidenceBook.beside(ledger)
    p95 = Measurement("p95", Verdict.PASSED, "0.231 s (within x ≤ 0.5)", 0.2314)
    for number, measured in enumerate([(health(1.0), p95), (health(0.5, Verdict.FAILED), p95),
                                       (health(0.75), p95)], start=1):
        book.record(gate.release_id, "qa", number, NOW - timedelta(minutes=10 - number),
                    Evidence.of("analysis", measured))
    # the gate's own environment, and another release: neither is shown
    book.record(gate.release_id, "prod", 1, NOW, Evidence.of("analysis", (health(0.0),)))
    book.record("delivery-0000000000000000", "qa", 1, NOW,
                Evidence.of("analysis", (health(0.25, Verdict.FAILED),)))

    view = asyncio.run(desk(ledger).view(gate, None))
    (qa,) = view.analysis
    assert (qa.environment, qa.verdicts, qa.last.round) == (
        "qa", ("passed", "failed", "passed"), 3)
    text = page_text(render_decision(view, csrf="c" * 43, now=NOW))
    assert ("Verified in qa smoke: 200 Analysis in qa passed, failed, passed round 3 at"
            " 2026-11-22 05:53 UTC: health = 0.75 (3 of 4 requests passed)"
            " p95 = 0.2314 (0.231 s (within x ≤ 0.5))") in text


def test_no_analysis_row_without_rounds_before_the_gate(ledger: Ledger) -> None:
    gate, _ = opened()  # a plan without stages: nothing is before the gate
    EvidenceBook.beside(ledger).record(gate.release_id, "qa", 1, NOW,
                                       Evidence.of("analysis", (health(1.0),)))
    view = asyncio.run(desk(ledger).view(gate, None))
    assert view.analysis == ()
    assert "Analysis in" not in render_decision(view, csrf="c" * 43, now=NOW)
    other = replace(helm_gate({}), release_id="delivery-1111111111111111")
    assert asyncio.run(desk(ledger).view(other, None)).analysis == ()  # no round of its own


def test_provider_text_is_escaped_and_bounded_and_many_rounds_are_cut(ledger: Ledger) -> None:
    gate = helm_gate({})
    hostile = health(0.0, Verdict.INCONCLUSIVE,
                     '<img src=x onerror="alert(1)"> ' + "y" * 2000 + SECRET)
    book = EvidenceBook.beside(ledger)
    for number in range(1, 26):
        book.record(gate.release_id, "qa", number, NOW - timedelta(minutes=30 - number),
                    Evidence.of("analysis", (hostile,)))
    view = asyncio.run(desk(ledger).view(gate, None))
    (qa,) = view.analysis
    assert len(qa.verdicts) == 20 and qa.earlier == 5 and qa.last.round == 25
    html = render_decision(view, csrf="c" * 43, now=NOW)
    assert "<img" not in html and SECRET not in html and "&lt;img src=x" in html
    assert "Analysis in qa 5 earlier, then inconclusive," in page_text(html)


def test_an_unreachable_ledger_only_hides_the_analysis(azurite: Azurite) -> None:
    dead = Ledger.from_connection_string(
        azurite.connection_string.replace(f":{azurite.table_port}/", ":1/"), "deadledger",
        retries=0)
    gate = helm_gate({})
    view = asyncio.run(desk(dead).view(gate, None))
    assert view.analysis == () and view.running_now is None
    assert "Verified in qa smoke: 200" in page_text(render_decision(view, csrf="c" * 43,
                                                                    now=NOW))
