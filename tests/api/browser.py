"""A real browser for the page tests: Debian's Chromium driven by Playwright, and a log of
what each page did (console errors, failed requests, every URL it asked for)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# .ci/run names the browser it installed: then a missing browser fails the suite, not skips it.
NAMED = os.environ.get("NORTHSTAR_TEST_CHROMIUM")
CHROMIUM = NAMED or shutil.which("chromium") or shutil.which("chromium-browser")
# `NORTHSTAR_SCREENSHOTS=1 pytest tests/api/app` rewrites the screenshots of docs/app.md.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def launch_browser():
    """A context manager yielding a launched Chromium (skips the test when there is none)."""
    if NAMED and not os.access(NAMED, os.X_OK):
        pytest.fail(f"NORTHSTAR_TEST_CHROMIUM={NAMED} is not an executable browser")
    if not CHROMIUM:
        pytest.skip("no Chromium: apt-get install chromium (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")

    class Launched:
        def __enter__(self):
            self.playwright = sync_api.sync_playwright().start()
            self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            return self.browser

        def __exit__(self, *exc):
            self.browser.close()
            self.playwright.stop()

    return Launched()


class PageLog:
    """Console errors, failed requests and every URL the page asked for."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.urls: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("request", lambda r: self.urls.append(r.url))

    def assert_clean(self, base_url: str, blocked: tuple[str, ...] = ()) -> None:
        """No console error, no failed request, no request off the service; except the URLs in
        `blocked`, which the page's own Content-Security-Policy stopped before they left."""
        errors = [e for e in self.errors if not any(url in e and "Content Security Policy" in e for url in blocked)]
        failed = [f for f in self.failed if f not in {f"{url} csp" for url in blocked}]
        assert not errors, (errors, failed)
        assert not failed, failed
        outside = [
            u
            for u in self.urls
            if not u.startswith(base_url) and not u.startswith(("data:", "blob:")) and u not in blocked
        ]
        assert not outside, outside


def open_page(browser, url: str, **context_options):
    context = browser.new_context(**context_options)
    page = context.new_page()
    log = PageLog(page)
    page.goto(url, wait_until="networkidle")
    return context, page, log


def screenshot(page, name: str) -> None:
    """Save the page as docs/screenshots/<name>.png when NORTHSTAR_SCREENSHOTS is set."""
    if os.environ.get("NORTHSTAR_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))  # the viewport: 1280x900 in the tests


@pytest.fixture(scope="module")
def browser():
    """One Chromium per module of page tests (tests/conftest.py offers it). Not per session:
    Playwright's sync API keeps an event loop running on the main thread while it is started,
    and the later tests that call asyncio.run (asyncpg, the MCP and dbt SL clients) cannot."""
    with launch_browser() as launched:
        yield launched
