"""Anomaly alerts: the daily check recomputed independently (daily values from hand-written SQL
over the landing files, the band from Python's statistics module) must flag exactly the days
GET /v1/alerts serves; the mart BI tools read holds the same rows; the planted crash spike of
the bad release is flagged."""

from __future__ import annotations

import datetime as dt
import math
import statistics

import duckdb
import pytest

from seeds.story import PLANTED
from tests.oracle import Oracle

# The check as documented in dbt_project/models/marts/quality/fct_metric_checks.yml.
BASELINE_WEEKS = 4
MIN_BASELINE_WEEKS = 3
THRESHOLD = 5.0
RELATIVE_FLOOR = 0.1
COUNTS = {"active_users", "events", "sessions", "feature_users", "new_users", "crashes", "tickets"}
# Domains the served band is held in (counts >= 0; a crash-free rate is at most 1 and, by its
# definition, can dip below 0 in a tiny slice; revenue nets refunds) and which way is bad.
DOMAINS = {
    **{m: (0.0, math.inf) for m in COUNTS},
    "errors": (0.0, math.inf),
    "errors_per_1k_events": (0.0, math.inf),
    "tickets_per_1k_active_users": (0.0, math.inf),
    "crash_free_user_rate": (-math.inf, 1.0),
    "revenue": (-math.inf, math.inf),
}
LOWER_IS_BETTER = {"crashes", "errors", "tickets", "errors_per_1k_events", "tickets_per_1k_active_users"}
ORACLE_METRICS = [
    "active_users",
    "events",
    "sessions",
    "revenue",
    "feature_users",
    "new_users",
    "crashes",
    "tickets",
    "crash_free_user_rate",
    "errors_per_1k_events",
]


@pytest.fixture(scope="module")
def oracle(api):
    return Oracle(api.landing_dir)


def daily_values(oracle: Oracle, metric: str) -> dict[dt.date, float]:
    first, last = oracle.sql("select cast(min(metric_time) as date), cast(max(metric_time) as date) from src_events")[0]
    rows = {dt.date.fromisoformat(d): v for d, v in oracle.query([metric], ["metric_time__day"])}
    out = {}
    day = first
    while day <= last:
        value = rows.get(day)
        if value is None and metric in COUNTS | {"revenue"}:
            value = 0
        if value is not None:
            out[day] = float(value)
        day += dt.timedelta(days=1)
    return out


def expected_alerts(values: dict[dt.date, float], metric: str) -> dict[dt.date, tuple[str, float, float]]:
    out = {}
    for day, value in values.items():
        baseline = [
            values[day - dt.timedelta(weeks=w)]
            for w in range(1, BASELINE_WEEKS + 1)
            if day - dt.timedelta(weeks=w) in values
        ]
        if len(baseline) < MIN_BASELINE_WEEKS:
            continue
        median = statistics.median(baseline)
        mad = statistics.median(abs(b - median) for b in baseline)
        half = THRESHOLD * max(
            1.4826 * mad, RELATIVE_FLOOR * abs(median), math.sqrt(max(median, 1)) if metric in COUNTS else 0
        )
        if abs(value - median) > half:
            low, high = DOMAINS[metric]
            out[day] = ("above" if value > median else "below", max(median - half, low), min(median + half, high))
    return out


@pytest.fixture(scope="module")
def served(api):
    response = api.client.get("/v1/alerts")
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


@pytest.mark.parametrize("metric", ORACLE_METRICS)
def test_alerts_match_an_independent_check(api, oracle, served, metric):
    expected = expected_alerts(daily_values(oracle, metric), metric)
    got = {dt.date.fromisoformat(a["date"]): a for a in served if a["metric"] == metric}
    assert set(got) == set(expected), metric
    for day, (direction, lower, upper) in expected.items():
        assert got[day]["direction"] == direction
        assert got[day]["lower_bound"] == pytest.approx(lower, rel=1e-9, abs=1e-9)
        assert got[day]["upper_bound"] == pytest.approx(upper, rel=1e-9, abs=1e-9)


def test_every_alert_is_adverse_or_not_and_its_band_is_in_the_metric_domain(served):
    assert {a["metric"] for a in served} >= {"tickets", "crashes"}
    for alert in served:
        assert alert["adverse"] == (
            alert["direction"] == ("above" if alert["metric"] in LOWER_IS_BETTER else "below")
        ), alert
        low, high = DOMAINS.get(alert["metric"], (-math.inf, math.inf))
        assert low <= alert["lower_bound"] <= alert["upper_bound"] <= high, alert
    tickets = [a for a in served if a["metric"] == "tickets"]
    assert any(a["lower_bound"] == 0.0 for a in tickets)  # the raw band (median - half) was below 0


def test_the_bad_release_crash_spike_is_flagged(api):
    bad = PLANTED["bad_release"]
    body = api.client.get("/v1/alerts", params={"metric": "crashes", "since": bad["released_on"]}).json()
    in_aftermath = [a for a in body["alerts"] if a["date"] < bad["aftermath_until"]]
    assert in_aftermath and all(a["direction"] == "above" and a["value"] > a["upper_bound"] for a in in_aftermath)
    assert all(a["date"] >= bad["released_on"] for a in body["alerts"])


def test_bi_tools_see_the_same_alerts_in_the_mart(api, served):
    with duckdb.connect(str(api.warehouse), read_only=True) as con:
        rows = con.execute(
            "select metric_name, strftime(metric_date, '%Y-%m-%d'), direction from marts.fct_metric_alerts"
        ).fetchall()
    assert sorted(rows) == sorted((a["metric"], a["date"], a["direction"]) for a in served)


def test_filters_and_bad_input(api, served):
    since = api.client.get("/v1/alerts", params={"since": "2026-03-01"}).json()["alerts"]
    assert since == [a for a in served if a["date"] >= "2026-03-01"]
    response = api.client.get("/v1/alerts", params={"metric": "crash"})
    assert response.status_code == 422 and "'crashes'" in response.json()["error"]["message"]
    assert api.client.get("/v1/alerts", params={"since": "yesterday"}).status_code == 422
    inverted = api.client.get("/v1/alerts", params={"since": "2026-03-01", "until": "2026-02-01"})
    assert inverted.status_code == 422 and inverted.json()["error"]["code"] == "invalid_query"
    assert "'since' (2026-03-01) must be before 'until' (2026-02-01)" in inverted.json()["error"]["message"]


def test_daily_values_mart_matches_hand_sql(api, oracle):
    """fct_metric_values_daily, the input of the check, against the landing files day by day."""
    with duckdb.connect(str(api.warehouse), read_only=True) as con:
        rows = con.execute(
            "select metric_name, metric_date, metric_value from marts.fct_metric_values_daily"
        ).fetchall()
    mart: dict[str, dict[dt.date, float]] = {}
    for name, day, value in rows:
        mart.setdefault(name, {})[day] = value
    for metric in ORACLE_METRICS:
        expected = daily_values(oracle, metric)
        assert set(mart[metric]) == set(expected), metric
        for day, value in expected.items():
            assert mart[metric][day] == pytest.approx(value, rel=1e-9, abs=1e-12), (metric, day)
    by_hand = oracle.sql("""
        with e as (select cast(metric_time as date) as d, count(distinct user_id) as users
                   from src_events group by 1),
             r as (select cast(metric_time as date) as d, count(*) as n from src_errors
                   where severity in ('crash', 'error') group by 1),
             t as (select cast(metric_time as date) as d, count(*) as n from src_tickets group by 1)
        select e.d, coalesce(r.n, 0), 1000.0 * coalesce(t.n, 0) / e.users
        from e left join r on r.d = e.d left join t on t.d = e.d""")
    for day, errors, tickets_per_1k in by_hand:
        assert mart["errors"][day] == errors
        assert mart["tickets_per_1k_active_users"][day] == pytest.approx(tickets_per_1k, rel=1e-12)
