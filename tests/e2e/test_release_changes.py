"""What a release changes, end to end: labelled images through devhost (registry, Azurite,
Kubernetes simulator), the Teams card, the approval page in Chromium with its compare link,
and the release page of the dashboard.

1.0.0 goes to production; 1.0.1 is rejected at the gate (a version skipped); 1.1.0 waits
at the production gate and shows 1.0.0's revision, its own, the link between them and 1.0.1.
With `SAVE_SCREENSHOTS=1` the page is saved as docs/images/approval-page-changes.png.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from sandbox.azurite import Azurite
from sandbox.browser import (
    BrowserMissing,
    async_chromium,
    async_screenshot_if_requested,
    require_browser,
)
from sandbox.faults import FaultProxy
from sandbox.images import build_image, push
from sandbox.kube.pytest_fixtures import *  # noqa: F403
from sandbox.kube.server import KubeSimulator
from sandbox.registry import LocalRegistry
from sandbox.tls import TlsFiles
from shared.approvals.keys import app_keyring
from shared.approvals.tokens import issue, new_nonce
from shared.ledger.changes import ChangesBook
from shared.registry.provenance import REVISION, SOURCE, VERSION
from tests.releases.release_rig import APPROVER, Released, ReleaseStack, outcome

SOURCE_URL = "https://github.com/contoso/delivery"


def revision(version: str) -> str:
    return hashlib.sha1(version.encode(), usedforsecurity=False).hexdigest()


@pytest.fixture
def stack(tmp_path: Path, tls_files: TlsFiles, registry: LocalRegistry, azurite: Azurite,
          kube: KubeSimulator, monkeypatch: pytest.MonkeyPatch) -> ReleaseStack:
    try:
        require_browser()
    except BrowserMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    return ReleaseStack(tmp_path, tls_files, registry, azurite, kube, monkeypatch)


def push_labelled(stack: ReleaseStack, version: str) -> str:
    labels = {SOURCE: SOURCE_URL, REVISION: revision(version), VERSION: version}
    layout = build_image(stack.tmp_path / "labelled" / version, layer_sizes=[512],
                         seed=f"{stack.repository}/{version}", tag=version, labels=labels,
                         annotations=labels)
    return push(layout, stack.registry, stack.repository, version)


def test_the_approval_page_shows_what_the_release_changes(stack: ReleaseStack) -> None:
    first, skipped, proposed = (push_labelled(stack, v) for v in ("1.0.0", "1.0.1", "1.1.0"))
    compare = f"{SOURCE_URL}/compare/{revision('1.0.0')}...{revision('1.1.0')}"

    async def scenario(run: Released) -> None:
        await run.completed("1.0.0", first)
        rejected = run.start("1.0.1", skipped)
        await run.at_gate(rejected)
        run.approve(rejected, approved=False)
        assert outcome(await run.finished(rejected)) == "Rejected"

        release = run.start("1.1.0", proposed)
        status = await run.at_gate(release)
        card = stack.teams.messages()[-1]["attachments"][0]["content"]
        facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet"
                 for f in b["facts"]}
        assert facts["Source revision"] == revision("1.1.0")[:12]
        assert facts["Running in prod"] == f"1.0.0 at {revision('1.0.0')[:12]}"
        assert facts["Versions in between"] == "1.0.1 (Rejected)"
        assert ("Compare changes", compare) in [(a["title"], a["url"])
                                                for a in card["actions"]]
        kept = ChangesBook.beside(stack.ledger).find(release, "prod")
        assert kept is not None and kept["compareUrl"] == compare

        (link,) = status["customStatus"]["waitingFor"]["approvalLinks"]
        page_url = f"{run.host.base_url}{urlsplit(link['url']).path}?" \
                   f"{urlsplit(link['url']).query}"
        async with async_chromium() as browser:
            context = await browser.new_context(viewport={"width": 900, "height": 640},
                                                java_script_enabled=False)
            page = await context.new_page()
            response = await page.goto(page_url)
            assert response is not None and response.status == 200
            assert await page.get_attribute("a.compare", "href") == compare
            facts_text = await page.inner_text("table.facts")
            assert revision("1.1.0") in facts_text and revision("1.0.0") in facts_text
            assert "1.0.1 (Rejected)" in facts_text
            await async_screenshot_if_requested(page.locator("main"), "approval-page-changes")
            await context.close()

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{run.host.base_url}/api/dashboard/releases/{release}"
                                ) as answer:
                assert answer.status == 200
                html = await answer.text()
            async with http.get(f"{run.host.base_url}/api/releases/{release}") as answer:
                shown = await answer.json()
        assert f'href="{compare}"' in html and "1.0.1" in html
        assert shown["changes"]["prod"]["running"]["revision"] == revision("1.0.0")

        run.approve(release)
        assert outcome(await run.finished(release)) == "Completed"

    stack.serve(scenario)


def test_an_unlabelled_image_and_a_failing_registry_never_stop_the_gate(
        stack: ReleaseStack, fault_proxy: FaultProxy) -> None:
    stack.policy(checks=[], registry_endpoint=fault_proxy.endpoint)
    digest = stack.push("1.0.0")  # no labels
    fault_proxy.inject(503, times=1000, method="GET", path_contains="/blobs/")

    async def scenario(run: Released) -> None:
        release = run.start("1.0.0", digest)
        status = await run.at_gate(release, step=2, seconds=60)
        card = stack.teams.messages()[-1]["attachments"][0]["content"]
        facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet"
                 for f in b["facts"]}
        assert facts["Source revision"].startswith("unknown: labels not read:")
        assert "HTTP 503" in facts["Source revision"]
        assert facts["Running in prod"] == "nothing recorded as running in prod"
        token = issue(app_keyring(), release_id=release, environment="prod", digest=digest,
                      scope="decide", expires_at=datetime.fromisoformat(
                          status["customStatus"]["waitingFor"]["deadline"]), nonce=new_nonce(),
                      approver=APPROVER)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{run.host.base_url}/api/releases/{release}/approvals/prod",
                                params={"token": token}) as answer:
                html = await answer.text()
        assert answer.status == 200 and "unknown: labels not read:" in html
        fault_proxy.reset()
        run.approve(release)
        assert outcome(await run.finished(release)) == "Completed"

    stack.serve(scenario)

