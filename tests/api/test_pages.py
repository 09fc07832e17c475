"""The API reference pages, in a real browser (Debian's Chromium driven by Playwright) against
the real service: /docs and /redoc render every operation with assets served by the service
itself (no request leaves the machine). The app's pages are tested in tests/api/app/."""

from __future__ import annotations

from tests.api.browser import open_page


def operation_count(api) -> int:
    spec = api.client.get("/openapi.json").json()
    return sum(1 for ops in spec["paths"].values() for method in ops if method in ("get", "post", "put", "delete"))


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
