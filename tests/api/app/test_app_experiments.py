"""Experiment pages in Chromium against the real service: the list's arms and SRM flags, and a
readout's intervals, which must be the API's bounds for the same options."""

from __future__ import annotations

import pytest
from scipy.stats import chisquare

from tests.api.browser import open_page, screenshot


@pytest.fixture(scope="module")
def experiments(api) -> list[dict]:
    return api.client.get("/v1/experiments").json()["experiments"]


def test_experiment_list(api, browser, experiments):
    context, page, log = open_page(browser, api.base_url + "/experiments", viewport={"width": 1280, "height": 800})
    try:
        rows = page.locator("#experiments tbody tr[data-experiment]")
        assert rows.count() == len(experiments)
        for e in experiments:
            row = page.locator(f"tr[data-experiment='{e['experiment_id']}']")
            text = row.inner_text()
            assert e["status"] in text and e["started_at"][:10] in text
            for v in e["variants"]:
                assert f"{v['variant']}" in text and f"{v['users']:,}" in text
            # SRM: chi-square of the arms' users against an even split, computed here.
            users = [v["users"] for v in sorted(e["variants"], key=lambda v: v["variant"] != e["control_variant"])]
            p_value = chisquare(users).pvalue
            srm = row.locator("td.srm").inner_text()
            assert f"p = {p_value:.2g}" in srm
            assert ("mismatch" in srm) == (p_value < 0.001)
        screenshot(page, "experiments")
        log.assert_clean(api.base_url)
    finally:
        context.close()


def shown_intervals(page) -> dict[tuple[str, str, str], tuple[float, float]]:
    out = {}
    for row in page.locator("#readout tr.result").all():
        key = (row.get_attribute("data-metric"), row.get_attribute("data-variant"), row.get_attribute("data-slice"))
        out[key] = (float(row.get_attribute("data-ci-low")), float(row.get_attribute("data-ci-high")))
    return out


def api_intervals(api, experiment_id: str, **params) -> dict[tuple[str, str, str], tuple[float, float]]:
    import json

    readout = api.client.get(f"/v1/experiments/{experiment_id}/readout", params=params).json()
    out = {}
    for r in readout["results"]:
        c = r["cuped"]
        use = c if params.get("cuped", "true") == "true" and c and c["error"] is None else r
        out[(r["metric"], r["variant"], json.dumps(r["slice"]))] = (use["ci_low"], use["ci_high"])
    return out


def test_readout_shows_the_api_intervals(api, browser, experiments):
    experiment_id = experiments[0]["experiment_id"]
    context, page, log = open_page(
        browser, f"{api.base_url}/experiments/{experiment_id}", viewport={"width": 1280, "height": 800}
    )
    try:
        expected = api_intervals(api, experiment_id)
        assert expected and shown_intervals(page) == expected
        assert page.locator("#readout svg.interval").count() == len(expected)
        assert page.is_visible("#health")
        screenshot(page, "readout")

        # CUPED off: the plain intervals.
        page.uncheck("#cuped")
        with page.expect_navigation():
            page.click("#readout-options button[type=submit]")
        assert shown_intervals(page) == api_intervals(api, experiment_id, cuped="false")

        # Correction and a slice drill-down.
        page.select_option("#correction", "holm-bonferroni")
        page.select_option("#group_by", "platform")
        with page.expect_navigation():
            page.click("#readout-options button[type=submit]")
        expected = api_intervals(api, experiment_id, cuped="false", correction="holm-bonferroni", group_by="platform")
        assert shown_intervals(page) == expected and len(expected) > 4
        assert "adj." in page.inner_text("#readout")
        log.assert_clean(api.base_url)
    finally:
        context.close()
