"""`releasectl approve|reject` through the approval page's JSON POST, in devhost.

The gate runs in token mode: each approval link names its approver. A decision is taken
with a release id and its token, or with the whole link; a used link, a forged token and
a finished gate are refused with the page's one-line reason (exit 1).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from sandbox.policy_text import APPROVER
from tests.cli.cli_runner import ctl, one_error_line
from tests.dashboard.dashboard_stack import DashboardStack


def approval_link(stack: DashboardStack, release_id: str) -> str:
    """The approver's link, as `releasectl show --json` gives it."""
    code, out, err = ctl("show", release_id, "--json", url=stack.url)
    assert code == 0, err
    waiting = json.loads(out)["durable"]["customStatus"]["waitingFor"]
    (link,) = [entry["url"] for entry in waiting["approvalLinks"]
               if entry["approver"] == APPROVER]
    return link


def test_approve_with_release_and_token_then_the_link_is_spent(
        dashboard_app: DashboardStack) -> None:
    release, _ = dashboard_app.waiting_release("v1.0.2")
    link = approval_link(dashboard_app, release)
    token = parse_qs(urlsplit(link).query)["token"][0]

    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    code, out, err = ctl("approve", release, "--token", forged, url=dashboard_app.url)
    assert code == 1 and out == ""
    assert forged not in err and token not in err
    one_error_line(err)

    code, out, err = ctl("approve", release, "--token", token, "--comment", "QA looks good",
                         url=dashboard_app.url)
    assert (code, err) == (0, ""), out
    assert out.startswith(f"Approve by {APPROVER} counted for {release} in prod: Approved")
    done = dashboard_app.until(release, lambda s: s["runtimeStatus"] != "Running", 90)
    assert done["output"]["outcome"] == "Completed", done

    code, out, err = ctl("approve", link, "--json", url=dashboard_app.url)
    assert code == 1
    reason = one_error_line(err)
    assert json.loads(out)["error"] == reason
    assert token not in err + out


def test_reject_with_the_link_ends_the_release(dashboard_app: DashboardStack) -> None:
    release, _ = dashboard_app.waiting_release("v1.0.2")
    link = approval_link(dashboard_app, release)
    code, out, err = ctl("reject", "--link", link, "--comment", "not this week", "--json",
                         url=dashboard_app.url)
    assert (code, err) == (0, ""), out
    verdict = json.loads(out)
    assert (verdict["releaseId"], verdict["environment"], verdict["decision"],
            verdict["counted"], verdict["outcome"], verdict["by"]) == (
        release, "prod", "reject", True, "Rejected", APPROVER)
    done = dashboard_app.until(release, lambda s: s["runtimeStatus"] != "Running", 60)
    assert done["output"]["outcome"] == "Rejected", done
    row = dashboard_app.until_ledger(release, lambda r: r.state == "Rejected")
    assert row.environment == "prod"
