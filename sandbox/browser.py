"""Headless Chromium for tests: Debian's `chromium` driven by Playwright, and screenshots.

`chromium()` starts Playwright's sync API and launches `/usr/bin/chromium` (Playwright
cannot download its own browser builds here); `async_chromium()` does the same with the
async API. `require_browser()` says what to install when either is missing.
`save_screenshot` writes a PNG; `screenshot_if_requested` writes one under docs/images/
only when `SAVE_SCREENSHOTS=1`, so tests can refresh the README's
images. The sync API marks the thread's asyncio loop as running between its calls: do not
call `asyncio.run` while a browser is open in the same thread (serve the app from another
process, e.g. `devhost.testing.DevhostProcess`). Does not start or serve any app.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.async_api import Locator as AsyncLocator
    from playwright.async_api import Page as AsyncPage
    from playwright.sync_api import Browser, Page

CHROMIUM: Final = "/usr/bin/chromium"
LAUNCH_ARGS: Final = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run")
VIEWPORT: Final = {"width": 960, "height": 720}
SCREENSHOT_ENV: Final = "SAVE_SCREENSHOTS"
IMAGES_DIR: Final = Path(__file__).resolve().parent.parent / "docs" / "images"


class BrowserMissing(RuntimeError):
    """Chromium or the playwright package is not installed; says how to install it."""


def require_browser(executable: str = CHROMIUM) -> str:
    """The Chromium path, or BrowserMissing naming what to install."""
    missing = []
    if not os.access(executable, os.X_OK):
        missing.append(f"{executable} not found: install it with `apt-get install -y chromium`"
                       " (or run `make test` as root)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package is missing: `.venv/bin/pip install"
                       " 'playwright>=1.65,<2'` (or `make test`); no `playwright install` needed")
    if missing:
        raise BrowserMissing("; ".join(missing))
    return executable


@contextmanager
def chromium(executable: str = CHROMIUM, **launch: Any) -> Iterator[Browser]:
    """A headless Chromium for the `with` block; Playwright stops with it."""
    from playwright.sync_api import sync_playwright

    path = require_browser(executable)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=list(LAUNCH_ARGS),
                                             headless=True, **launch)
        try:
            yield browser
        finally:
            browser.close()


@asynccontextmanager
async def async_chromium(executable: str = CHROMIUM, **launch: Any) -> AsyncIterator[AsyncBrowser]:
    """The same browser for async tests, e.g. beside an in-process devhost in one event loop."""
    from playwright.async_api import async_playwright

    path = require_browser(executable)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=list(LAUNCH_ARGS),
                                                   headless=True, **launch)
        try:
            yield browser
        finally:
            await browser.close()


def save_screenshot(page: Page, path: Path | str, *, full_page: bool = True) -> Path:
    """Write a PNG of the page (the whole page unless `full_page` is false) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=full_page, type="png")
    return target


async def async_screenshot_if_requested(target: AsyncPage | AsyncLocator, name: str,
                                        directory: Path = IMAGES_DIR) -> Path | None:
    """`screenshot_if_requested` for an async page (whole page) or one element of it."""
    if not screenshots_requested():
        return None
    path = directory / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"full_page": True} if hasattr(target, "goto") else {}
    await target.screenshot(path=str(path), type="png", **options)
    return path


def screenshots_requested() -> bool:
    """Whether `SAVE_SCREENSHOTS=1` asks tests to refresh the images under docs/images/."""
    return os.environ.get(SCREENSHOT_ENV, "").strip().lower() in {"1", "true", "yes"}


def screenshot_if_requested(page: Page, name: str, directory: Path = IMAGES_DIR,
                            *, full_page: bool = True) -> Path | None:
    """`docs/images/<name>.png` when screenshots are requested, else nothing (None)."""
    if not screenshots_requested():
        return None
    return save_screenshot(page, directory / f"{name}.png", full_page=full_page)
