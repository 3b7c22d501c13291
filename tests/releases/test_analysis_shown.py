"""A real release whose QA is analysed over time, end to end through devhost on a virtual
clock: at production's gate, the approval page, the dashboard's release page and
`releasectl show` each show QA's rounds as the ledger recorded them."""

from __future__ import annotations

import asyncio
import re

import aiohttp
from release_rig import Released, ReleaseStack
from test_analysis_releases import analysis

from tests.approvals.test_approval_endpoint import ANN, Web, links_at_gate
from tests.cli.cli_runner import ctl


def words(html: str) -> str:
    """A page's words: line breaks and cells apart, inline tags dropped."""
    spaced = re.sub(r"<(br|/?t[dhr])\b[^>]*>", " ", html)
    return " ".join(re.sub(r"<[^>]+>", "", spaced).split())


def test_qa_rounds_are_shown_at_the_gate_on_the_dashboard_and_by_releasectl(
        stack: ReleaseStack) -> None:
    server = stack.check_server(lambda headers: (200, {"status": "ok"}))
    stack.policy(checks=[], qa_extra=analysis(server.url, measurements=2),
                 gate=f"{{approvers: {{users: [{ANN}]}}, deadline: 72h,"
                      " teamsWebhookSecret: teams-webhook}")
    digest = stack.push("v1.0.0")
    said = "1 (within 0.75 ≤ x): 4 of 4 requests passed (status 200 as expected)"

    async def scenario(run: Released) -> None:
        release, links = await links_at_gate(run, "v1.0.0", digest)
        async with aiohttp.ClientSession() as http:
            web = Web(http, run.host.base_url)
            code, html, _ = await web.get(links[ANN])
            assert code == 200, html
            page = words(html)
            assert re.search(r"Analysis in qa passed, passed round 2 at [-\d: ]+ UTC: "
                             + re.escape(f"health = 1 ({said})"), page), page
            stack.assert_no_secret("the approval page", html)
            code, html, _ = await web.get(f"/api/dashboard/releases/{release}?refresh=0")
            assert code == 200, html
            assert re.search(r"Analysis qa Round When Verdict Metrics 1 [-\d: ]+ UTC passed"
                             + re.escape(f" health = 1 {said} 2 ") + r"[-\d: ]+ UTC passed"
                             + re.escape(f" health = 1 {said}"), words(html)), words(html)
        code, out, err = await asyncio.to_thread(ctl, "show", release,
                                                 url=run.host.base_url)
        assert (code, err) == (0, ""), err
        rows = [" ".join(line.split()) for line in out.splitlines()]
        assert [re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", "WHEN", row) for row in rows
                if row.startswith("qa ") and "health" in row] == [
            "qa 1 WHEN passed health = 1", "qa 2 WHEN passed health = 1"]

    stack.serve(scenario)
