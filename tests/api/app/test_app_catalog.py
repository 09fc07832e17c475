"""The catalog at `/`, in Chromium against the real service: every metric of `/v1/metrics`
as a card, search as you type, filters, keyboard navigation, and the links to what else is
served."""

from __future__ import annotations

import time

import pytest

from tests.api.browser import open_page, screenshot


@pytest.fixture(scope="module")
def catalog(api, browser):
    context, page, log = open_page(browser, api.base_url + "/", viewport={"width": 1280, "height": 900})
    yield page, log
    context.close()


def visible_names(page) -> list[str]:
    return page.eval_on_selector_all("#metric-cards .card:not([hidden])", "els => els.map(e => e.dataset.name)")


def test_catalog_lists_every_metric_and_links_what_is_served(api, catalog):
    page, log = catalog
    metrics = api.client.get("/v1/metrics").json()["metrics"]
    assert visible_names(page) == [m["name"] for m in metrics]
    for m in metrics:
        card = page.locator(f"#metric-cards .card[data-name='{m['name']}']")
        assert m["label"] in card.locator("h3").inner_text()
        if m["owner"]:
            assert m["owner"] in card.inner_text()
    saved = api.client.get("/v1/saved-queries").json()["saved_queries"]
    assert page.locator(".saved-query").count() == len(saved)
    hrefs = set(page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href'))"))
    assert {"/docs", "/redoc", "/dbt-docs/"} <= hrefs
    for href in ("/docs", "/redoc", "/dbt-docs/"):
        assert api.client.get(href).status_code == 200, href
    screenshot(page, "catalog")
    log.assert_clean(api.base_url)


def test_search_finds_a_metric_as_you_type(api, catalog):
    page, log = catalog
    metrics = api.client.get("/v1/metrics").json()["metrics"]
    for word in ("crash", "revenue", "ticket"):
        page.fill("#search", "")
        page.type("#search", word)
        expected = [
            m["name"]
            for m in metrics
            if word in " ".join([m["name"], m["label"], m["description"], m["owner"] or ""]).lower()
        ]
        assert expected and visible_names(page) == expected, word
        assert f"{len(expected)} of {len(metrics)}" in page.inner_text("#result-count")
    page.fill("#search", "no-such-metric-anywhere")
    page.dispatch_event("#search", "input")
    assert visible_names(page) == [] and page.is_visible("#no-results")
    page.fill("#search", "")
    page.dispatch_event("#search", "input")
    log.assert_clean(api.base_url)


def test_filters_by_type_and_owner(api, catalog):
    page, _ = catalog
    metrics = api.client.get("/v1/metrics").json()["metrics"]
    page.select_option("#filter-type", "ratio")
    assert visible_names(page) == [m["name"] for m in metrics if m["type"] == "ratio"]
    page.select_option("#filter-type", "")
    owner = metrics[0]["owner"]
    page.select_option("#filter-owner", owner)
    assert visible_names(page) == [m["name"] for m in metrics if m["owner"] == owner]
    page.select_option("#filter-owner", "")


def test_keyboard_navigation(api, browser):
    context, page, log = open_page(browser, api.base_url + "/")
    try:
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "search"
        page.keyboard.type("rate")
        names = visible_names(page)
        assert len(names) >= 2
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.closest('.card').dataset.name") == names[0]
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.closest('.card').dataset.name") == names[1]
        page.keyboard.press("ArrowUp")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/metrics/{names[0]}**")
        page.wait_for_selector("#chart[aria-busy='false']")
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_catalog_answers_fast(api):
    api.client.get("/")  # warm: the first call reads each model's newest date once per build
    started = time.perf_counter()
    response = api.client.get("/")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed < 0.3, elapsed


def test_an_unknown_metric_is_a_page_naming_the_nearest(api):
    response = api.client.get("/metrics/active_user")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "active_users" in response.text
