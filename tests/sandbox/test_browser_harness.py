"""The browser harness: Chromium opens a page, runs its script, screenshots land as PNG."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import browser as harness
from sandbox.browser import BrowserMissing, require_browser, save_screenshot

PAGE = ("data:text/html,<title>harness</title><p id=p>static</p>"
        "<script>document.getElementById('p').textContent='scripted'</script>")


def test_page_renders_and_runs_script(browser_page, tmp_path: Path) -> None:
    browser_page.goto(PAGE)
    assert browser_page.title() == "harness"
    assert browser_page.text_content("#p") == "scripted"
    shot = save_screenshot(browser_page, tmp_path / "shots" / "harness.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_contexts_without_javascript(browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(PAGE)
    assert page.text_content("#p") == "static"
    context.close()


def test_missing_chromium_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(BrowserMissing, match=r"apt-get install -y chromium"):
        require_browser(str(tmp_path / "no-chromium"))


def test_screenshots_only_when_requested(browser_page, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    browser_page.goto(PAGE)
    monkeypatch.delenv(harness.SCREENSHOT_ENV, raising=False)
    assert harness.screenshot_if_requested(browser_page, "x", tmp_path) is None
    assert not (tmp_path / "x.png").exists()
    monkeypatch.setenv(harness.SCREENSHOT_ENV, "1")
    assert harness.screenshot_if_requested(browser_page, "x", tmp_path) == tmp_path / "x.png"
    assert (tmp_path / "x.png").stat().st_size > 100
