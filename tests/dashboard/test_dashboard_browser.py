"""The dashboard in headless Chromium: a pending approval, then the new production version.

The app runs in a devhost subprocess (Playwright's sync API owns this thread's event
loop). A pushed release passes QA and waits at production's gate; the dashboard lists it
with its approval page link; following the link and pressing Approve lets it reach
production, which the dashboard shows after refreshing itself (meta refresh, no script).
With `SAVE_SCREENSHOTS=1` the pages are saved as docs/images/dashboard.png and
dashboard-release.png.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from sandbox.browser import screenshot_if_requested
from sandbox.policy_text import APPROVER, SERVICE
from shared.ledger import DeployedChart
from tests.dashboard.dashboard_stack import V1, V1_DIGEST, DashboardStack

REFRESH = 5  # the shortest the dashboard allows


def test_pending_approval_then_new_production_version(seeded_dashboard: DashboardStack,
                                                      browser_page: Page) -> None:
    page = browser_page
    page.set_default_timeout(60_000)
    waiting, digest = seeded_dashboard.waiting_release("v1.0.2")

    page.goto(f"{seeded_dashboard.url}/api/dashboard?refresh={REFRESH}")
    expect(page).to_have_title("Releases")
    gate = page.locator("#waiting tbody tr")
    expect(gate).to_have_count(1)
    expect(gate).to_contain_text("delivery v1.0.2")
    expect(gate.locator("td").nth(1)).to_have_text("prod")
    expect(gate).to_contain_text("in 3 d")  # a 72 h deadline
    production = page.locator("#environments tbody tr").first.locator("td").nth(1)
    expect(production).to_contain_text("v1.0.0")
    expect(page.locator("#recent")).to_contain_text("RolledBack")
    # the stylesheet applies: the CSP's hash allows it
    expect(page.locator("#recent .state-RolledBack")).to_have_css("background-color",
                                                                  "rgb(253, 226, 225)")
    assert page.locator("script").count() == 0
    screenshot_if_requested(page, "dashboard")

    page.locator("#waiting").get_by_role("link", name="delivery v1.0.2").click()
    expect(page.locator("h1")).to_contain_text("delivery v1.0.2 WaitingForApproval")
    expect(page.locator("#timeline")).to_contain_text("stage Healthy")
    screenshot_if_requested(page, "dashboard-release")
    page.go_back()

    link = gate.get_by_role("link", name=f"Approval page for {APPROVER}")
    expect(link).to_have_count(1)
    link.click()
    page.get_by_role("button", name="Approve").click()
    facts = page.locator("table.facts")  # the approval page's result
    expect(facts).to_contain_text(waiting)
    expect(facts.locator("tr", has_text="By")).to_contain_text(APPROVER)

    page.goto(f"{seeded_dashboard.url}/api/dashboard?refresh={REFRESH}")
    # The page reloads itself until the release has finished (promotion, rollout, checks).
    latest = page.locator("#recent tbody tr").first
    expect(latest).to_contain_text("delivery v1.0.2")
    expect(latest).to_contain_text("Completed", timeout=90_000)
    expect(production).to_contain_text("v1.0.2")
    expect(production).to_contain_text(digest[:19])
    expect(production).to_contain_text("last good release")
    expect(page.locator("#waiting")).to_contain_text("Nothing waits at a gate.")
    assert seeded_dashboard.ledger.get_release(waiting, service="delivery").state == "Completed"


def test_a_helm_environment_shows_chart_and_revision_with_the_full_digest_on_hover(
        dashboard_app: DashboardStack, browser_page: Page) -> None:
    stack, page = dashboard_app, browser_page
    stack.seed_history()
    chart = DeployedChart(SERVICE, "1.0.0", "sha256:" + "c1" * 32)
    image = f"{stack.registry.host}/prod/{stack.repository}@{V1_DIGEST}"
    stack.ledger.set_current(SERVICE, "prod", V1, V1_DIGEST, image, chart=chart, revision=3)
    page.goto(f"{stack.url}/api/dashboard?refresh=0")
    production = page.locator("#environments tbody tr").first.locator("td").nth(1)
    shown = production.locator(".chart")
    expect(shown).to_have_text("chart delivery 1.0.0 · Helm revision 3")
    expect(shown).to_have_attribute("title", f"chart digest {chart.digest}")
    qa = page.locator("#environments tbody tr").first.locator("td").nth(0)
    expect(qa).to_contain_text("v1.0.0")
    expect(qa.locator(".chart")).to_have_count(0)  # a Deployment target there


def test_a_service_pipeline_shows_its_environments_left_to_right(
        seeded_dashboard: DashboardStack, browser_page: Page) -> None:
    page = browser_page
    page.set_default_timeout(60_000)
    seeded_dashboard.waiting_release("v1.0.2")
    page.goto(f"{seeded_dashboard.url}/api/dashboard?refresh=0")
    page.locator("#environments").get_by_role("link", name=SERVICE).click()
    expect(page.locator("h1")).to_have_text(SERVICE)
    stages = page.locator("ol.pipeline > li")
    expect(stages).to_have_count(2)
    qa, prod = stages.nth(0), stages.nth(1)
    expect(qa.locator("h2")).to_contain_text("qa")
    expect(prod.locator("h2")).to_contain_text("prod")
    qa_box, prod_box = qa.bounding_box(), prod.bounding_box()
    assert qa_box is not None and prod_box is not None
    assert qa_box["x"] + qa_box["width"] <= prod_box["x"]  # left to right
    expect(qa.locator(".runs")).to_contain_text("v1.0.2")
    expect(prod.locator(".runs")).to_contain_text("v1.0.0")
    expect(prod.locator(".gate-before")).to_contain_text(f"1 approval from {APPROVER}")
    expect(prod.locator(".waits")).to_contain_text("v1.0.2 for approval: 0 of 1 so far")
    expect(prod.locator(".failure")).to_contain_text("v1.0.1 RolledBack")
    expect(prod.locator(".failure")).to_contain_text("rollout failed; restored v1.0.0")
    expect(qa.locator(".failure")).to_contain_text("none recently")
    assert page.locator("script").count() == 0
    screenshot_if_requested(page, "dashboard-pipeline")

    page.goto(f"{seeded_dashboard.url}/api/dashboard/services/nosuch?refresh=0")
    expect(page.locator("body")).to_contain_text("no service nosuch in the policy or the"
                                                 " ledger")
