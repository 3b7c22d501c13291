"""The approval page in headless Chromium against the real app in devhost, a release at its gate.

The release goes through QA (Kubernetes simulator, registry, Azurite) and waits at the
production gate; its Teams card is captured by the local webhook sink. A person opens the
card's link, approves with a comment (with JavaScript off: the page needs none) or rejects,
and sees the result; the release goes on, or stops. An expired link shows its page, and a
prefetch of the link decides nothing. With `SAVE_SCREENSHOTS=1` the pages and the card
(rendered from its JSON as plain HTML) are saved under docs/images/ for the README.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sandbox.azurite import Azurite
from sandbox.browser import (
    BrowserMissing,
    async_chromium,
    async_screenshot_if_requested,
    require_browser,
)
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.approvals.keys import app_keyring
from shared.approvals.tokens import issue, new_nonce
from shared.ledger.approvals import ApprovalBook
from tests.releases.release_rig import APPROVER, OLD_IMAGE, Released, ReleaseStack

VIEWPORT = {"width": 900, "height": 640}


@pytest.fixture
def stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry, azurite: Azurite,
          kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> ReleaseStack:
    try:
        require_browser()
    except BrowserMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    return ReleaseStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)


def local(url: str, run: Released) -> str:
    """A link as sent (APPROVAL_BASE_URL) pointed at the devhost serving the test."""
    parts = urlsplit(url)
    return f"{run.host.base_url}{parts.path}?{parts.query}"


def nothing_decided(run: Released, release: str) -> None:
    assert run.status(release)["customStatus"]["waitingFor"]["event"] == "approval:prod:1"
    assert not [e for e in run.history(release) if e["EventType"] == "EventRaised"]
    assert ApprovalBook.beside(run.stack.ledger).uses(release, "prod") == []


def card_html(card: dict[str, Any]) -> str:
    """An Adaptive Card's text blocks, facts and buttons as plain HTML, Teams-like."""
    parts = []
    for block in card["body"]:
        if block["type"] == "TextBlock":
            weight = "600" if block.get("weight") == "Bolder" else "400"
            size = "17px" if block.get("size") == "Medium" else "14px"
            color = {"Good": "#237b4b", "Attention": "#c4314b"}.get(block.get("color"), "#242424")
            parts.append(f'<p style="font-weight:{weight};font-size:{size};color:{color};'
                         f'margin:6px 0">{html.escape(block["text"])}</p>')
        elif block["type"] == "FactSet":
            rows = "".join(f'<tr><td style="font-weight:600;padding:2px 16px 2px 0">'
                           f'{html.escape(f["title"])}</td><td>{html.escape(f["value"])}</td></tr>'
                           for f in block["facts"])
            parts.append(f'<table style="font-size:14px;margin:8px 0">{rows}</table>')
    buttons = "".join(f'<span style="display:inline-block;border:1px solid #d1d1d1;'
                      f'border-radius:4px;padding:6px 18px;margin-right:8px;font-weight:600">'
                      f'{html.escape(a["title"])}</span>' for a in card.get("actions", []))
    return ('<html><body style="margin:0;background:#f5f5f5;font-family:system-ui,sans-serif">'
            '<div style="margin:16px;max-width:560px;background:#fff;border-radius:6px;'
            'padding:14px 18px;box-shadow:0 1px 2px rgba(0,0,0,.15)">'
            '<p style="color:#616161;font-size:12px;margin:0 0 6px">Release workflow · via'
            ' Workflows</p>' + "".join(parts) + f'<div style="margin-top:12px">{buttons}</div>'
            "</div></body></html>")


def test_approve_with_a_comment_in_a_browser_without_javascript(stack: ReleaseStack) -> None:
    digest = stack.push("v1.0.0")

    async def scenario(run: Released) -> None:
        release = run.start("v1.0.0", digest)
        await run.at_gate(release)
        (message,) = stack.teams.messages()
        card = message["attachments"][0]["content"]
        assert card["version"] == "1.4"
        # Without App Service Authentication each approver gets a personal link.
        (action,) = card["actions"]
        assert (action["type"], action["title"]) == ("Action.OpenUrl", f"Review as {APPROVER}")
        approve = local(action["url"], run)
        assert urlsplit(approve).path == f"/api/releases/{release}/approvals/prod"

        async with async_chromium() as browser:
            preview = await browser.new_context(viewport=VIEWPORT)
            card_page = await preview.new_page()
            await card_page.set_content(card_html(card))
            await async_screenshot_if_requested(card_page.locator("div").first,
                                                "approval-teams-card")
            # A link preview (or a mail scanner) opening the button decides nothing.
            prefetch = await card_page.goto(approve)
            assert prefetch is not None and prefetch.status == 200
            await preview.close()
            nothing_decided(run, release)

            person = await browser.new_context(viewport=VIEWPORT, java_script_enabled=False)
            page = await person.new_page()
            response = await page.goto(approve)
            assert response is not None and response.status == 200
            assert await page.text_content("h1") == "Approve delivery v1.0.0 to prod?"
            facts = await page.inner_text("table.facts")
            assert digest in facts and "Verified in qa" in facts
            await async_screenshot_if_requested(page.locator("main"), "approval-page")
            await page.fill("#comment", "ship it")
            async with page.expect_navigation():
                await page.click("button.approve")
            assert await page.text_content("h1") == f"Approved by {APPROVER}"
            result = await page.inner_text("main")
            assert "the release continues" in result and "ship it" in result
            await async_screenshot_if_requested(page.locator("main"), "approval-result")
            await person.close()

        done = await run.finished(release)
        assert done["output"]["outcome"] == "Completed", done
        assert stack.image("prod") == stack.image_in("prod", digest)
        (use,) = ApprovalBook.beside(stack.ledger).uses(release, "prod")
        assert (use.by, use.decision, use.comment) == (APPROVER, "approve", "ship it")

    stack.serve(scenario)


def test_reject_in_a_browser_and_an_expired_link(stack: ReleaseStack) -> None:
    digest = stack.push("v1.1.0")

    async def scenario(run: Released) -> None:
        release = run.start("v1.1.0", digest)
        status = await run.at_gate(release)
        (link,) = status["customStatus"]["waitingFor"]["approvalLinks"]
        expired = issue(app_keyring(), release_id=release, environment="prod", digest=digest,
                        scope="decide", expires_at=datetime.now(UTC) - timedelta(hours=1),
                        nonce=new_nonce(), approver=APPROVER)

        async with async_chromium() as browser:
            context = await browser.new_context(viewport=VIEWPORT)
            page = await context.new_page()
            response = await page.goto(f"{run.host.base_url}/api/releases/{release}/approvals"
                                       f"/prod?token={expired}")
            assert response is not None and response.status == 410
            assert await page.text_content("h1") == "This approval link has expired"
            assert "Nothing was changed." in await page.inner_text("main")
            await async_screenshot_if_requested(page.locator("main"), "approval-expired")
            nothing_decided(run, release)

            await page.goto(local(link["url"], run) + "&decision=reject")
            assert await page.text_content("h1") == "Reject delivery v1.1.0 to prod?"
            await page.fill("#comment", "not this week")
            async with page.expect_navigation():
                await page.click("button.reject")
            assert await page.text_content("h1") == f"Rejected by {APPROVER}"
            assert "will not go to prod" in await page.inner_text("main")
            await context.close()

        done = await run.finished(release)
        assert done["output"]["outcome"] == "Rejected", done
        assert done["output"]["reason"] == f"rejected by {APPROVER}: not this week"
        assert stack.image("prod") == OLD_IMAGE

    stack.serve(scenario)
