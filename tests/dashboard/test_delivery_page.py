"""The delivery metrics page in headless Chromium: reached from the dashboard, a chart per
figure (inline SVG, no script), the window links; the history of delivery_history.py.

With `SAVE_SCREENSHOTS=1` the page is saved as docs/images/dashboard-delivery.png.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from sandbox.browser import screenshot_if_requested
from sandbox.policy_text import SERVICE
from tests.dashboard.dashboard_stack import DashboardStack
from tests.dashboard.delivery_history import seed_delivery_history

HEALTHY, FAILED = "#2f855a", "#c53030"


def test_the_delivery_page_charts_each_figure_of_the_window(dashboard_app: DashboardStack,
                                                              browser_page: Page) -> None:
    page = browser_page
    seed_delivery_history(dashboard_app.ledger)
    page.goto(f"{dashboard_app.url}/api/dashboard?refresh=0")
    page.get_by_role("link", name="Delivery metrics").click()
    expect(page).to_have_title("Delivery metrics")
    expect(page.locator("h1")).to_have_text("Delivery metrics")
    assert page.locator("script").count() == 0

    headline = {key: page.locator(f"#chart-{key} .headline") for key in (
        "frequency", "lead-time", "failure-rate", "restore")}
    expect(headline["frequency"]).to_have_text("4 to production (0.13 per day)")
    expect(headline["lead-time"]).to_have_text("median 2 h, p90 3 h")
    expect(headline["failure-rate"]).to_have_text("25 % (1 of 4)")
    expect(headline["restore"]).to_have_text("median 2 h")
    bars = page.locator("#chart-frequency svg rect.bar")
    expect(bars).to_have_count(4)  # three healthy, one rolled back stacked on a healthy one
    assert sorted(bars.nth(i).get_attribute("fill") or "" for i in range(4)) == sorted(
        [HEALTHY, HEALTHY, HEALTHY, FAILED])
    expect(page.locator("#chart-failure-rate svg rect.bar")).to_have_count(3)  # days with any
    expect(page.locator("#chart-restore svg rect.bar")).to_have_count(1)
    assert page.locator("#chart-restore svg rect.bar title").text_content() \
        .endswith("median time to restore 2 h (1 restored)")
    row = page.locator("#services tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(SERVICE)
    expect(row).to_contain_text("25 % (1 of 4)")
    screenshot_if_requested(page, "dashboard-delivery")

    page.get_by_role("link", name="7 days").click()
    expect(page.locator(".meta").first).to_contain_text("Last 7 days")
    expect(headline["frequency"]).to_have_text("3 to production (0.43 per day)")
    # 2 h and 1 h: the 3 h change was 10 days back
    expect(headline["lead-time"]).to_have_text("median 1 h 30 min, p90 2 h")
    page.goto(f"{dashboard_app.url}/api/dashboard/delivery?days=7&service=nobody")
    expect(page.locator(".message")).to_have_text(
        "unknown service 'nobody'; the policy names delivery")


def test_without_deployments_each_chart_says_no_data(dashboard_app: DashboardStack,
                                                      browser_page: Page) -> None:
    page = browser_page
    page.goto(f"{dashboard_app.url}/api/dashboard/delivery?refresh=0&service={SERVICE}")
    expect(page.locator("h1")).to_have_text(f"Delivery metrics: {SERVICE}")
    expect(page.locator("svg rect.bar")).to_have_count(0)
    expect(page.locator("svg text", has_text="no data")).to_have_count(4)
    expect(page.locator("#chart-failure-rate .headline")).to_have_text("no data")
    expect(page.locator("#chart-lead-time .headline")).to_have_text("median no data")
    as_json = dashboard_app.get(f"/api/dashboard/delivery?format=json&service={SERVICE}")
    assert as_json.status_code == 200 and as_json.json()["services"][SERVICE][
        "changeFailureRate"] == {"deployments": 0, "failed": 0, "rate": None}
    refused = dashboard_app.get("/api/dashboard/delivery?days=400&format=json")
    assert (refused.status_code, refused.json()) == (
        400, {"error": "days must be a whole number from 1 to 365, not '400'"})
