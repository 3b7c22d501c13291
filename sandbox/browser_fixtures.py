"""pytest fixtures for browser tests: `browser` (headless Chromium) and `browser_page`.

Loaded for every test folder by `pytest_plugins` in tests/conftest.py. Both are per test:
Playwright's sync API must not stay open across tests that call `asyncio.run`. When
Chromium or playwright is missing the fixtures fail (never skip), saying what to install.

    def test_page(browser_page):
        browser_page.goto(url)
        screenshot_if_requested(browser_page, "my-page")   # docs/images/ with SAVE_SCREENSHOTS=1
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sandbox.browser import VIEWPORT, BrowserMissing, chromium, require_browser

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser", "browser_page"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless Chromium for one test (new contexts: `browser.new_context(...)`)."""
    try:
        require_browser()
    except BrowserMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    with chromium() as running:
        yield running


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no cookies, 960x720 viewport) of the test's Chromium."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        yield context.new_page()
    finally:
        context.close()
