"""The metric explorer, in Chromium against the real service: what the chart plots (read from
the page's chart data, not pixels) equals what `/v1/query` answers for the same state, where
the expected request is built here from the state, not taken from the page; each control
changes the URL and the chart; the CSV download is the API's CSV; a link reproduces a chart."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.browser import open_page, screenshot
from tests.api.sql_endpoint.sql_servers import sql_server  # noqa: F401  (a fixture)
from tests.conftest import northstar

METRIC = "active_users"


@pytest.fixture(scope="module")
def newest(api) -> dt.date:
    """The newest day of the metric's data: the anchor of the 'last N days' presets."""
    meta = api.client.post("/v1/query", json={"metrics": [METRIC]}).json()["meta"]
    return dt.date.fromisoformat(meta["newest_metric_time"][:10])


def chart(page) -> dict:
    return json.loads(page.get_attribute("#chart", "data-series"))


def wait_ready(page, after: str | None = None) -> None:
    """Until the chart has drawn (a later drawing than `after`, when given)."""
    page.wait_for_function(
        "after => { const c = document.getElementById('chart');"
        " return c.getAttribute('aria-busy') === 'false' && c.dataset.ready && c.dataset.ready !== after; }",
        arg=after,
        timeout=30_000,
    )


def ready_mark(page) -> str | None:
    return page.get_attribute("#chart", "data-ready")


def api_rows(api, body: dict) -> tuple[list[str], list[list]]:
    answer = api.client.post("/v1/query", json=body).json()
    return [c["name"] for c in answer["columns"]], answer["rows"]


def assert_plotted(shape: dict, rows: list[list], slice_value=None, value_at: int = 1, slice_at: int | None = None):
    """Every plotted point is the API's value for that bucket; buckets the API has no row for
    are gaps (null), never zeros."""
    series = (
        next(s for s in shape["series"] if s.get("slice") == slice_value and not s.get("previous"))
        if slice_value is not None
        else shape["series"][0]
    )
    expected = {str(r[0])[:10]: r[value_at] for r in rows if slice_at is None or r[slice_at] == slice_value}
    plotted = dict(zip(shape["x"], series["values"]))
    assert {d: v for d, v in plotted.items() if v is not None} == {d: v for d, v in expected.items() if v is not None}
    assert all(plotted[d] is None for d in plotted if d not in expected)
    assert set(expected) <= set(plotted)


def url_state(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_default_chart_equals_the_api(api, browser, newest):
    context, page, log = open_page(browser, f"{api.base_url}/metrics/{METRIC}", viewport={"width": 1280, "height": 900})
    try:
        wait_ready(page)
        end = newest + dt.timedelta(days=1)
        body = {
            "metrics": [METRIC],
            "group_by": ["metric_time__day"],
            "start": str(end - dt.timedelta(days=90)),
            "end": str(end),
            "order_by": ["metric_time__day"],
        }
        _, rows = api_rows(api, body)
        shape = chart(page)
        assert shape["kind"] == "line"
        assert_plotted(shape, rows)
        # One x per day of the range, so a day without rows shows as a gap.
        assert shape["x"][0] == body["start"] and len(shape["x"]) == 90
        # The table lists exactly the API's rows.
        assert page.locator("#result-table tbody tr").count() == len(rows)
        assert page.inner_text("h1").startswith("Active users")
        assert "fct_events" in page.inner_text(".definition")
        screenshot(page, "explorer")
        log.assert_clean(api.base_url)
    finally:
        context.close()
    # The dark theme follows the system setting.
    context, page, log = open_page(
        browser,
        f"{api.base_url}/metrics/{METRIC}?grain=week&range=all&slice=platform",
        viewport={"width": 1280, "height": 900},
        color_scheme="dark",
    )
    try:
        wait_ready(page)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 20, 25)", background
        screenshot(page, "explorer-dark")
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_controls_change_the_url_and_the_chart(api, browser, newest):
    context, page, log = open_page(browser, f"{api.base_url}/metrics/{METRIC}?grain=day&range=90d")
    try:
        wait_ready(page)
        end = newest + dt.timedelta(days=1)

        mark = ready_mark(page)
        page.select_option("#grain", "week")
        wait_ready(page, mark)
        assert url_state(page)["grain"] == ["week"]
        body = {
            "metrics": [METRIC],
            "group_by": ["metric_time__week"],
            "start": str(end - dt.timedelta(days=90)),
            "end": str(end),
            "order_by": ["metric_time__week"],
        }
        assert_plotted(chart(page), api_rows(api, body)[1])

        mark = ready_mark(page)
        page.select_option("#range", "28d")
        wait_ready(page, mark)
        assert url_state(page)["range"] == ["28d"]
        body["start"] = str(end - dt.timedelta(days=28))
        assert_plotted(chart(page), api_rows(api, body)[1])

        mark = ready_mark(page)
        page.select_option("#slice", "platform")
        wait_ready(page, mark)
        assert url_state(page)["slice"] == ["platform"]
        sliced = {**body, "group_by": ["metric_time__week", "platform"]}
        columns, rows = api_rows(api, sliced)
        platforms = sorted({r[1] for r in rows if r[1] is not None})
        shape = chart(page)
        assert sorted(s["slice"] for s in shape["series"]) == platforms
        for platform in platforms:
            assert_plotted(shape, rows, slice_value=platform, value_at=columns.index(METRIC), slice_at=1)

        # A filter from the value picker, whose values come from the warehouse.
        page.select_option("#filter-dim", "country")
        page.wait_for_selector("#filter-values:not([disabled])")
        countries = page.eval_on_selector_all("#filter-values option", "os => os.map(o => o.value)")
        _, api_countries = api_rows(api, {"metrics": [METRIC], "group_by": ["country"], "order_by": ["country"]})
        assert countries == [r[0] for r in api_countries if r[0] is not None]
        chosen = countries[:2]
        page.select_option("#filter-values", chosen)
        mark = ready_mark(page)
        page.click("#filter-add")
        wait_ready(page, mark)
        assert url_state(page)["f"] == [f"country={c}" for c in chosen]
        filtered = {**sliced, "where": [{"field": "country", "op": "in", "values": chosen}]}
        columns, rows = api_rows(api, filtered)
        shape = chart(page)
        for platform in {r[1] for r in rows if r[1] is not None}:
            assert_plotted(shape, rows, slice_value=platform, value_at=columns.index(METRIC), slice_at=1)

        # The URL alone reproduces the chart.
        state_url, drawn = page.url, chart(page)
        context2, page2, log2 = open_page(browser, state_url)
        wait_ready(page2)
        assert chart(page2) == drawn
        context2.close()
        log2.assert_clean(api.base_url)

        # Back goes to the previous state.
        mark = ready_mark(page)
        page.go_back()
        wait_ready(page, mark)
        assert "f" not in url_state(page)
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_totals_by_slice_are_bars(api, browser):
    context, page, log = open_page(browser, f"{api.base_url}/metrics/{METRIC}?grain=total&range=all&slice=platform")
    try:
        wait_ready(page)
        shape = chart(page)
        _, rows = api_rows(api, {"metrics": [METRIC], "group_by": ["platform"], "order_by": [f"-{METRIC}"]})
        assert shape["kind"] == "bar"
        assert dict(zip(shape["x"], shape["series"][0]["values"])) == {
            ("(no value)" if r[0] is None else r[0]): r[1] for r in rows
        }
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_second_metric_and_previous_period(api, browser, newest):
    context, page, log = open_page(
        browser, f"{api.base_url}/metrics/{METRIC}?grain=week&range=28d&metric2=sessions&compare=1"
    )
    try:
        wait_ready(page)
        end = newest + dt.timedelta(days=1)
        start = end - dt.timedelta(days=28)
        body = {
            "metrics": [METRIC, "sessions"],
            "group_by": ["metric_time__week"],
            "start": str(start),
            "end": str(end),
            "order_by": ["metric_time__week"],
        }
        columns, rows = api_rows(api, body)
        shape = chart(page)
        assert [s.get("metric") for s in shape["series"]] == [METRIC, "sessions", METRIC]
        assert shape["series"][1]["axis"] == 2
        assert_plotted(shape, rows, value_at=columns.index(METRIC))
        sessions = {str(r[0])[:10]: r[columns.index("sessions")] for r in rows}
        assert {d: v for d, v in zip(shape["x"], shape["series"][1]["values"]) if v is not None} == sessions
        # The previous 28 days, bucket by bucket under this period's buckets.
        _, before = api_rows(
            api,
            {
                "metrics": [METRIC],
                "group_by": ["metric_time__week"],
                "start": str(start - dt.timedelta(days=28)),
                "end": str(start),
                "order_by": ["metric_time__week"],
            },
        )
        previous = [v for v in shape["series"][2]["values"] if v is not None]
        assert previous == [r[1] for r in before][: len(shape["x"])]
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_csv_download_equals_the_api_csv(api, browser, newest):
    context, page, log = open_page(
        browser, f"{api.base_url}/metrics/{METRIC}?grain=week&range=90d&slice=platform", accept_downloads=True
    )
    try:
        wait_ready(page)
        end = newest + dt.timedelta(days=1)
        body = {
            "metrics": [METRIC],
            "group_by": ["metric_time__week", "platform"],
            "start": str(end - dt.timedelta(days=90)),
            "end": str(end),
            "order_by": ["metric_time__week"],
        }
        with page.expect_download() as download:
            page.click("#download-csv")
        text = open(download.value.path()).read()
        expected = api.client.post("/v1/query", params={"format": "csv"}, json=body).text
        assert text == expected and text.count("\n") > 2
        with page.expect_download() as download:
            page.click("#download-parquet")
        assert open(download.value.path(), "rb").read()[:4] == b"PAR1"
        # "Copy as" shows the same request.
        copied = page.text_content("#copy-json")
        assert json.loads(copied.split("\n\n", 1)[1]) == body
        assert "--group-by metric_time__week,platform" in page.text_content("#copy-cli")
        assert page.text_content("#copy-sql").startswith("SELECT metric_time__week, platform, active_users")
        log.assert_clean(api.base_url)
    finally:
        context.close()


def test_copied_sql_and_command_answer_the_same_rows(sql_server, browser, built_warehouse):
    """The "copy as" SQL, run on the SQL endpoint, and the copied `northstar query` command,
    run in a shell's words, answer the chart's rows."""
    psycopg = pytest.importorskip("psycopg")
    context, page, log = open_page(
        browser,
        f"{sql_server.http_url}/metrics/{METRIC}?grain=week&range=90d&slice=platform&f=country%3DUS&f=country%3DDE",
    )
    try:
        wait_ready(page)
        sql = page.text_content("#copy-sql")
        assert "country IN ('US', 'DE')" in sql
        shown = page.evaluate("window.northstarChart.rows")
        with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
            answered = [
                [c.isoformat() if hasattr(c, "isoformat") else c for c in row] for row in conn.execute(sql).fetchall()
            ]
        # ORDER BY the week only: rows within a week may come in any order.
        assert sorted(answered, key=repr) == sorted(shown, key=repr) and shown

        words = shlex.split(page.text_content("#copy-cli"))
        assert words[:2] == ["northstar", "query"]
        printed = northstar(*words[1:], "--warehouse", str(built_warehouse.warehouse)).stdout
        # The CLI marks a partial value `*` and an unknown one `?` (completeness); the values are the same.
        table = [
            [cell.strip().removesuffix(" *").removesuffix(" ?") for cell in line.strip("│").split("│")]
            for line in printed.splitlines()
            if line.startswith("│")
        ]
        assert sorted(table) == sorted([[str(v) for v in row] for row in shown])
        log.assert_clean(sql_server.http_url)
    finally:
        context.close()
