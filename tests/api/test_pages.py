"""The pages for people, in a real browser (Debian's Chromium driven by Playwright) against
the real service: the home page links what is served, and /docs and /redoc render every
operation with assets served by the service itself (no request leaves the machine)."""

from __future__ import annotations

import os
import shutil

import pytest

# .ci/run names the browser it installed: then a missing browser fails the suite, not skips it.
NAMED = os.environ.get("NORTHSTAR_TEST_CHROMIUM")
CHROMIUM = NAMED or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if NAMED and not os.access(NAMED, os.X_OK):
        pytest.fail(f"NORTHSTAR_TEST_CHROMIUM={NAMED} is not an executable browser")
    if not CHROMIUM:
        pytest.skip("no Chromium: apt-get install chromium (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


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
        outside = [u for u in self.urls
                   if not u.startswith(base_url) and not u.startswith(("data:", "blob:")) and u not in blocked]
        assert not outside, outside


def open_page(browser, url: str):
    context = browser.new_context()
    page = context.new_page()
    log = PageLog(page)
    page.goto(url, wait_until="networkidle")
    return context, page, log


def operation_count(api) -> int:
    spec = api.client.get("/openapi.json").json()
    return sum(1 for ops in spec["paths"].values() for method in ops if method in ("get", "post", "put", "delete"))


def test_home_page_links_what_is_served(api, browser):
    context, page, log = open_page(browser, api.base_url + "/")
    try:
        hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href'))")
        assert {"/v1/metrics", "/docs", "/redoc", "/dbt-docs/"} <= set(hrefs)
        for href in hrefs:
            assert api.client.get(href).status_code == 200, href
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_swagger_ui_renders_every_operation_offline(api, browser):
    context, page, log = open_page(browser, api.base_url + "/docs")
    try:
        page.wait_for_selector(".opblock", timeout=30_000)
        rendered = page.locator(".opblock").count()
        assert rendered == operation_count(api)
        assert page.locator(".opblock-summary-path", has_text="/v1/query").count() >= 1
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_redoc_renders_the_operations_offline(api, browser):
    context, page, log = open_page(browser, api.base_url + "/redoc")
    try:
        page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
        sections = page.locator("[data-section-id^='operation/']").count()
        assert sections == operation_count(api)
        # ReDoc's sidebar logo comes from its maker's CDN; the page's policy stops that request.
        log.assert_clean(api.base_url, blocked=("https://cdn.redoc.ly/redoc/logo-mini.svg",))
    finally:
        context.close()
