"""Release health over HTTP on the sample warehouse: per-version counts against hand-written SQL
over the landing files, the regression test against scipy, and the planted bad release."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from scipy import stats

from seeds.story import BAD_RELEASE, HOTFIX_RELEASE
from tests.oracle import Oracle

ALPHA = 0.01
WINDOW_DAYS = 14

# One version's counts over a window, from the oracle's hand-written views of the landing files
# (internal users dropped, each event_id once).
VERSION_COUNTS = """
    select
        (select count(distinct user_id) from src_events
          where platform = ? and app_version = ? and metric_time >= ? and metric_time < ?),
        (select count(distinct user_id) from src_errors
          where severity = 'crash' and platform = ? and app_version = ? and metric_time >= ? and metric_time < ?),
        (select count(distinct event_id) from src_events
          where platform = ? and app_version = ? and metric_time >= ? and metric_time < ?),
        (select count(*) from src_errors
          where severity in ('crash', 'error') and platform = ? and app_version = ? and metric_time >= ?
            and metric_time < ?)
"""


@pytest.fixture(scope="module")
def oracle(api):
    return Oracle(api.landing_dir)


@pytest.fixture(scope="module")
def landing_releases(api, oracle):
    rows = oracle.sql(
        f"select platform, app_version, cast(released_at as timestamp) "
        f"from read_parquet('{api.landing_dir / 'releases.parquet'}') order by 1, 3"
    )
    previous, out = {}, {}
    for platform, version, released in rows:
        out[(platform, version)] = (released, previous.get(platform))
        previous[platform] = version
    return out


@pytest.fixture(scope="module")
def listing(api):
    response = api.client.get("/v1/releases")
    assert response.status_code == 200, response.text
    return {(r["platform"], r["app_version"]): r for r in response.json()["releases"]}


def counts(oracle, platform, version, start, end):
    return oracle.sql(VERSION_COUNTS, [platform, version, start, end] * 4)[0]


def scipy_test(x1, n1, x0, n0):
    pooled = (x1 + x0) / (n1 + n0)
    z = (x1 / n1 - x0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return z, 2 * stats.norm.sf(abs(z))


def test_every_landing_release_is_listed_with_its_predecessor(listing, landing_releases):
    assert set(listing) == set(landing_releases)
    for key, (released, previous) in landing_releases.items():
        assert listing[key]["released_at"] == released.isoformat()
        assert listing[key]["previous_app_version"] == previous


def test_counts_rates_and_tests_match_hand_sql_and_scipy(listing, oracle):
    data_end = oracle.sql("select cast(max(metric_time) as date) + 1 from src_events")[0][0]
    data_end = dt.datetime.combine(data_end, dt.time())
    checked = empty = 0
    for (platform, version), r in listing.items():
        start = dt.datetime.fromisoformat(r["released_at"])
        end = min(start + dt.timedelta(days=WINDOW_DAYS), data_end)
        assert r["window_end"] == max(start, end).isoformat()
        if start >= end:
            continue
        users, crashed, events, errors = counts(oracle, platform, version, start, end)
        current = r["current"]
        assert (current["active_users"], current["crashed_users"], current["events"], current["errors"]) == (
            users,
            crashed,
            events,
            errors,
        ), (platform, version)
        if users:
            assert r["crash_free_user_rate"] == pytest.approx(1 - crashed / users, rel=1e-12)
        if events:
            assert r["errors_per_1k_events"] == pytest.approx(1000 * errors / events, rel=1e-12)
        if r["previous_app_version"] is None:
            assert r["regressed"] is None and "no previous version" in r["regressed_reason"]
            continue
        p_users, p_crashed, p_events, p_errors = counts(oracle, platform, r["previous_app_version"], start, end)
        assert (r["previous"]["active_users"], r["previous"]["crashed_users"]) == (p_users, p_crashed)
        for test, x1, n1, x0, n0 in (
            (r["crash_test"], crashed, users, p_crashed, p_users),
            (r["error_test"], errors, events, p_errors, p_events),
        ):
            pooled = (x1 + x0) / (n1 + n0) if n1 and n0 else None
            if not n1 or not n0 or pooled in (0, 1):
                # no data (or nothing to test) is neither a regression nor a clean bill
                assert test["p_value"] is None and test["regressed"] is None
                assert test["error"] == ("empty_sample" if not n1 or not n0 else "no_variance")
                assert r["regressed"] in (None, True) and (r["regressed"] or r["regressed_reason"])
                if not n1 or not n0:
                    assert "empty_sample" in r["regressed_reason"]
                empty += 1
                continue
            z, p = scipy_test(x1, n1, x0, n0)
            assert test["z"] == pytest.approx(z, rel=1e-9)
            assert test["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-300)
            assert test["regressed"] == (x1 / n1 > x0 / n0 and p < ALPHA)
            checked += 1
    assert checked >= 20 and empty >= 1


def test_the_bad_release_is_flagged_and_healthy_ones_are_not(listing):
    flagged = {key for key, r in listing.items() if r["regressed"]}
    assert flagged == {BAD_RELEASE}
    bad = listing[BAD_RELEASE]
    assert bad["crash_test"]["regressed"] and bad["crash_test"]["p_value"] < ALPHA
    assert bad["crash_free_user_rate"] < bad["previous_crash_free_user_rate"]
    # the hotfix is better than the bad release, not a regression
    hotfix = listing[HOTFIX_RELEASE]
    assert hotfix["previous_app_version"] == BAD_RELEASE[1]
    assert hotfix["crash_test"]["difference"] < 0 and not hotfix["regressed"]


def test_adoption_by_day_since_release_matches_hand_sql(api, oracle):
    platform, version = BAD_RELEASE
    body = api.client.get(f"/v1/releases/{platform}/{version}").json()
    assert body["regressed"] is True
    released = dt.datetime.fromisoformat(body["released_at"]).date()
    rows = dict(
        (d, (v, n))
        for d, v, n in oracle.sql(
            """
        select cast(metric_time as date),
               count(distinct user_id) filter (where app_version = ?),
               count(distinct user_id)
        from src_events where platform = ? group by 1""",
            [version, platform],
        )
    )
    adoption = body["adoption"]
    assert [a["day"] for a in adoption] == list(range(len(adoption))) and len(adoption) == 29
    for a in adoption:
        date = released + dt.timedelta(days=a["day"])
        assert a["date"] == date.isoformat()
        version_users, platform_users = rows[date]
        assert (a["version_users"], a["platform_users"]) == (version_users, platform_users)
        assert a["share"] == pytest.approx(version_users / platform_users, rel=1e-12)
    # the hotfix replaces it a week later: adoption peaks in the first week, then falls
    peak = max(adoption, key=lambda a: a["share"])
    assert peak["day"] <= 7 and adoption[14]["share"] < peak["share"] / 2


def test_platform_filter_and_bad_input(api):
    ios = api.client.get("/v1/releases", params={"platform": "ios"}).json()["releases"]
    assert ios and {r["platform"] for r in ios} == {"ios"}
    response = api.client.get("/v1/releases", params={"platform": "web"})
    assert response.status_code == 422 and "'android'" in response.json()["error"]["message"]
    response = api.client.get("/v1/releases/andriod/5.3.0")
    assert response.status_code == 404 and response.json()["error"]["suggestions"] == ["android"]
    response = api.client.get("/v1/releases/android/5.3.2")
    assert response.status_code == 404
    assert "5.3.1" in response.json()["error"]["suggestions"]
    response = api.client.get("/v1/releases/android/5.3.0", params={"alpha": 2})
    assert response.status_code == 422
