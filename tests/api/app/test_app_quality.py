"""Quality, release, launch and alert pages in Chromium against the real service: what they
show is what the scorecard routes answer."""

from __future__ import annotations

import json

from tests.api.app.test_app_explorer import chart, wait_ready
from tests.api.browser import open_page, screenshot


def test_quality_tiles(api, browser):
    card = api.client.get("/v1/quality").json()
    context, page, log = open_page(browser, api.base_url + "/quality", viewport={"width": 1280, "height": 900})
    try:
        tiles = page.locator("#kpis .tile")
        assert tiles.count() == len(card["kpis"])
        for i, k in enumerate(card["kpis"]):
            tile = tiles.nth(i)
            assert tile.get_attribute("data-metric") == k["metric"]
            if k["current"] and k["current"]["value"] is not None:
                assert float(tile.get_attribute("data-value")) == k["current"]["value"]
                assert tile.get_attribute("data-status") == k["current"]["status"]
        assert page.locator("#kpis svg.spark polyline").count() >= 1
        screenshot(page, "quality")
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_releases_and_a_release_adoption_curve(api, browser):
    releases = api.client.get("/v1/releases").json()["releases"]
    context, page, log = open_page(browser, api.base_url + "/releases", viewport={"width": 1280, "height": 900})
    try:
        rows = page.locator("#releases tbody tr")
        assert rows.count() == len(releases)
        flagged = page.eval_on_selector_all(
            "#releases tr[data-regressed='true']", "els => els.map(e => e.dataset.release)"
        )
        assert flagged == [f"{r['platform']}/{r['app_version']}" for r in releases if r["regressed"]]
        screenshot(page, "releases")
        target = next(r for r in releases if r["previous_app_version"] and r["crash_free_user_rate"] is not None)
        with page.expect_navigation():
            page.click(f"#releases tr[data-release='{target['platform']}/{target['app_version']}'] a")
        detail = api.client.get(f"/v1/releases/{target['platform']}/{target['app_version']}").json()
        assert json.loads(page.get_attribute("#adoption", "data-share")) == [a["share"] for a in detail["adoption"]]
        assert page.locator("#adoption polyline").count() >= 1
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_launch_scorecard(api, browser):
    launch_id = api.client.get("/v1/launches").json()["launches"][0]["launch_id"]
    card = api.client.get(f"/v1/launches/{launch_id}/scorecard").json()
    context, page, log = open_page(
        browser, f"{api.base_url}/launches/{launch_id}", viewport={"width": 1280, "height": 900}
    )
    try:
        assert json.loads(page.get_attribute("#adoption", "data-share")) == [a["share"] for a in card["adoption"]]
        rates = page.eval_on_selector_all("#retention [data-rate]", "els => els.map(e => e.dataset.rate)")
        assert [float(r) for r in rates] == [
            card["retention"]["adopters"]["rate"],
            card["retention"]["non_adopters"]["rate"],
        ]
        assert page.inner_text("#adopters") == f"{card['adopters']:,}"
        assert page.locator("#prepost tbody tr").count() == (
            len(card["quality"]) + len(card["feature_incidents"]) + (1 if card["feature_tickets"] else 0)
        )
        screenshot(page, "launch")
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_alerts_open_the_chart_with_the_band(api, browser):
    alerts = api.client.get("/v1/alerts").json()["alerts"]
    context, page, log = open_page(browser, api.base_url + "/alerts", viewport={"width": 1280, "height": 900})
    try:
        assert page.locator("#alerts tbody tr[data-metric]").count() == len(alerts)
        screenshot(page, "alerts")
        alert = alerts[0]
        with page.expect_navigation():
            page.click(f"#alerts tr[data-metric='{alert['metric']}'][data-date='{alert['date']}'] a")
        assert f"/metrics/{alert['metric']}" in page.url
        wait_ready(page)
        shape = chart(page)
        at = shape["x"].index(alert["date"])
        band = {s["band"]: s["values"][at] for s in shape["series"] if s.get("band")}
        assert band == {"low": alert["lower_bound"], "high": alert["upper_bound"]}
        # The metric's own value that day is the alert's value.
        assert shape["series"][0]["values"][at] == alert["value"]
        screenshot(page, "explorer-alert")
        log.assert_clean(api.base_url)
    finally:
        context.close()
