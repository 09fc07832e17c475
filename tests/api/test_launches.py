"""Launch scorecards over HTTP on the sample warehouse: every field against hand-written SQL over
the landing files, and the generator's planted launches (adoption, the launch that caused
incidents)."""

from __future__ import annotations

import datetime as dt

import pytest

from seeds.story import INCIDENT_LAUNCH_ID, INCIDENT_LAUNCH_INCIDENTS, LAUNCHES
from tests.oracle import Oracle

HORIZON = dt.timedelta(days=28)
WEEK = dt.timedelta(days=7)


@pytest.fixture(scope="module")
def oracle(api):
    return Oracle(api.landing_dir)


@pytest.fixture(scope="module")
def landing_launches(api, oracle):
    rows = oracle.sql(
        f"select launch_id, feature_key, cast(launched_at as timestamp) "
        f"from read_parquet('{api.landing_dir / 'launches.parquet'}')"
    )
    return {launch_id: (feature, at) for launch_id, feature, at in rows}


@pytest.fixture(scope="module")
def cards(api, landing_launches):
    out = {}
    for launch_id in landing_launches:
        response = api.client.get(f"/v1/launches/{launch_id}/scorecard")
        assert response.status_code == 200, response.text
        out[launch_id] = response.json()
    return out


def first_uses(oracle, feature, at):
    """Each external user's first use of the feature in the 28 days from the launch."""
    return dict(
        oracle.sql(
            """
        select user_id, min(metric_time) from src_events
        where feature_key = ? and metric_time >= ? and metric_time < ? group by 1""",
            [feature, at, at + HORIZON],
        )
    )


def test_launches_are_listed(api, landing_launches):
    body = api.client.get("/v1/launches").json()
    assert {x["launch_id"]: (x["feature_key"], x["launched_at"]) for x in body["launches"]} == {
        k: (f, at.isoformat()) for k, (f, at) in landing_launches.items()
    }


def test_adoption_by_day_matches_hand_sql(cards, oracle, landing_launches):
    for launch_id, card in cards.items():
        feature, at = landing_launches[launch_id]
        platforms = sorted(
            p
            for (p,) in oracle.sql(
                "select distinct platform from src_events where feature_key = ? and metric_time >= ? and metric_time < ?",
                [feature, at, at + HORIZON],
            )
        )
        assert card["platforms"] == platforms
        daily = {
            d: (f, a)
            for d, f, a in oracle.sql(
                f"""
            select cast(metric_time as date),
                   count(distinct user_id) filter (where feature_key = ?),
                   count(distinct user_id)
            from src_events where platform in ({", ".join("?" * len(platforms))}) group by 1""",
                [feature, *platforms],
            )
        }
        firsts = sorted(t.date() for t in first_uses(oracle, feature, at).values())
        last_day = max(daily)
        expected_days = [d for d in range(29) if at.date() + dt.timedelta(days=d) <= last_day]
        assert [a["day"] for a in card["adoption"]] == expected_days
        for a in card["adoption"]:
            date = at.date() + dt.timedelta(days=a["day"])
            feature_users, active = daily.get(date, (0, 0))
            assert (a["date"], a["feature_users"], a["active_users"]) == (date.isoformat(), feature_users, active)
            assert a["share"] == pytest.approx(feature_users / active, rel=1e-12)
            assert a["cumulative_adopters"] == sum(1 for d in firsts if d <= date)
        assert card["adopters"] == len(firsts)


def test_time_to_first_use_matches_hand_sql(cards, oracle, landing_launches):
    for launch_id, card in cards.items():
        feature, at = landing_launches[launch_id]
        p25, p50, p75, p90, mean = oracle.sql(
            """
            with firsts as (
                select (epoch(min(metric_time)) - epoch(cast(? as timestamp))) / 86400.0 as days
                from src_events where feature_key = ? and metric_time >= ? and metric_time < ? group by user_id)
            select quantile_cont(days, 0.25), quantile_cont(days, 0.5), quantile_cont(days, 0.75),
                   quantile_cont(days, 0.9), avg(days) from firsts""",
            [at, feature, at, at + HORIZON],
        )[0]
        ttfu = card["time_to_first_use_days"]
        for key, value in (("p25", p25), ("p50", p50), ("p75", p75), ("p90", p90), ("mean", mean)):
            assert ttfu[key] == pytest.approx(value, rel=1e-9), (launch_id, key)


def test_retention_of_adopters_and_non_adopters_matches_hand_sql(cards, oracle, landing_launches):
    for launch_id, card in cards.items():
        feature, at = landing_launches[launch_id]
        rows = oracle.sql(
            """
            with active as (
                select user_id,
                       bool_or(metric_time >= ? and metric_time < ?) as before,
                       bool_or(metric_time >= ? and metric_time < ?) as week_1,
                       bool_or(metric_time >= ? and metric_time < ?) as week_2,
                       bool_or(feature_key = ? and metric_time >= ? and metric_time < ?) as adopter
                from src_events group by user_id)
            select adopter, count(*), count(*) filter (where week_2)
            from active where before and week_1 group by 1""",
            [at - HORIZON, at, at, at + WEEK, at + WEEK, at + 2 * WEEK, feature, at, at + WEEK],
        )
        expected = {adopter: (n, kept) for adopter, n, kept in rows}
        retention = card["retention"]
        assert (retention["adopters"]["users"], retention["adopters"]["retained"]) == expected[True]
        assert (retention["non_adopters"]["users"], retention["non_adopters"]["retained"]) == expected[False]
        assert retention["adopters"]["rate"] == pytest.approx(expected[True][1] / expected[True][0])


def test_feedback_of_adopters_matches_hand_sql(cards, oracle, landing_launches):
    for launch_id, card in cards.items():
        feature, at = landing_launches[launch_id]
        rows = oracle.sql(
            """
            with around as (
                select user_id, bool_or(feature_key = ? and metric_time >= ?) as adopter
                from src_events where metric_time >= ? and metric_time < ? group by user_id)
            select a.adopter,
                   avg(case when f.nps_score >= 9 then 100 when f.nps_score <= 6 then -100
                            when f.nps_score is not null then 0 end),
                   count(f.nps_score),
                   avg(case when f.csat_score >= 4 then 1.0 when f.csat_score is not null then 0.0 end),
                   count(f.csat_score)
            from feedback f join users u on u.user_id = f.user_id and u.is_internal is not true
            join around a on a.user_id = f.user_id
            where f.submitted_at >= ? and f.submitted_at < ?
            group by 1""",
            [feature, at, at - HORIZON, at + HORIZON, at, at + HORIZON],
        )
        for adopter, nps, nps_n, csat, csat_n in rows:
            got = card["feedback"]["adopters" if adopter else "non_adopters"]
            assert got["nps"] == pytest.approx(nps, rel=1e-12) and got["nps_responses"] == nps_n
            assert got["csat"] == pytest.approx(csat, rel=1e-12) and got["csat_responses"] == csat_n


def test_pre_post_quality_on_the_launch_platforms_matches_the_oracle(cards, oracle, landing_launches):
    data_end = dt.datetime.combine(
        oracle.sql("select cast(max(metric_time) as date) + 1 from src_events")[0][0], dt.time()
    )
    for launch_id, card in cards.items():
        _, at = landing_launches[launch_id]
        where = [{"field": "platform", "op": "in", "values": card["platforms"]}]
        quality = {q["metric"]: q for q in card["quality"]}
        for metric, filters in (
            ("crash_free_user_rate", where),
            ("errors_per_1k_events", where),
            ("nps", []),
            ("csat", []),
        ):
            (before,) = oracle.query([metric], [], filters, start=at - HORIZON, end=at)[0]
            (after,) = oracle.query([metric], [], filters, start=at, end=min(at + HORIZON, data_end))[0]
            assert quality[metric]["before"] == pytest.approx(before, rel=1e-12), (launch_id, metric)
            assert quality[metric]["after"] == pytest.approx(after, rel=1e-12), (launch_id, metric)
        tickets, users = oracle.sql(
            "select (select count(*) from src_tickets where metric_time >= ? and metric_time < ?),"
            " (select count(distinct user_id) from src_events where metric_time >= ? "
            "and metric_time < ?)",
            [at - HORIZON, at] * 2,
        )[0]
        assert quality["tickets_per_1k_active_users"]["before"] == pytest.approx(1000 * tickets / users, rel=1e-12)


def test_incidents_and_tickets_tied_to_the_feature(cards, oracle, landing_launches):
    for launch_id, card in cards.items():
        feature, at = landing_launches[launch_id]
        caused = oracle.sql("select count(*) from incidents where launch_id = ?", [launch_id])[0][0]
        assert card["incidents_caused_by_launch"] == caused
        before, after = oracle.sql(
            """
            select count(*) filter (where opened_at >= ? and opened_at < ?),
                   count(*) filter (where opened_at >= ? and opened_at < ?)
            from incidents where feature_key = ?""",
            [at - HORIZON, at, at, at + HORIZON, feature],
        )[0]
        total = next(i for i in card["feature_incidents"] if i["severity"] is None)
        assert (total["before"], total["after"]) == (before, after)
        t_before, t_after = oracle.sql(
            """
            select count(*) filter (where metric_time >= ? and metric_time < ?),
                   count(*) filter (where metric_time >= ? and metric_time < ?)
            from src_tickets t join support_tickets s using (ticket_id) where s.feature_key = ?""",
            [at - HORIZON, at, at, at + HORIZON, feature],
        )[0]
        assert (card["feature_tickets"]["before"], card["feature_tickets"]["after"]) == (t_before, t_after)


def test_the_planted_launch_story(cards, oracle, landing_launches):
    # the incident launch caused exactly its planted incidents, with their severities, all after it
    incident_card = cards[INCIDENT_LAUNCH_ID]
    assert incident_card["incidents_caused_by_launch"] == len(INCIDENT_LAUNCH_INCIDENTS)
    by_severity = {i["severity"]: i for i in incident_card["feature_incidents"] if i["severity"]}
    for _, severity in INCIDENT_LAUNCH_INCIDENTS:
        assert by_severity[severity]["before"] == 0 and by_severity[severity]["after"] >= 1
    for spec in LAUNCHES:
        card = cards[spec.launch_id]
        feature, at = landing_launches[spec.launch_id]
        assert feature == spec.feature_key
        # nobody outside the company used the feature before it launched
        assert (
            oracle.sql("select count(*) from src_events where feature_key = ? and metric_time < ?", [feature, at])[0][0]
            == 0
        )
        adoption = card["adoption"]
        assert (
            adoption[0]["cumulative_adopters"]
            <= adoption[7]["cumulative_adopters"]
            < adoption[-1]["cumulative_adopters"]
        )
        if spec.launch_id != INCIDENT_LAUNCH_ID:
            assert card["incidents_caused_by_launch"] == 0
    # the planted adopter shares order the launches by adopters (0.55 > 0.30, 0.30 > 0.20)
    adopters = {spec.launch_id: cards[spec.launch_id]["adopters"] for spec in LAUNCHES}
    shares = {spec.launch_id: spec.adopter_share for spec in LAUNCHES}
    top, bottom = max(shares, key=shares.get), min(shares, key=shares.get)
    assert adopters[top] == max(adopters.values()) and adopters[bottom] == min(adopters.values())


def test_window_days_and_unknown_launch(api, cards):
    short = api.client.get(f"/v1/launches/{INCIDENT_LAUNCH_ID}/scorecard", params={"window_days": 7}).json()
    assert short["window_days"] == 7
    assert dt.datetime.fromisoformat(short["post_end"]) - dt.datetime.fromisoformat(
        short["launch"]["launched_at"]
    ) == dt.timedelta(days=7)
    response = api.client.get("/v1/launches/lch_01/scorecard")
    assert response.status_code == 404
    assert "lch_001" in response.json()["error"]["suggestions"]
    assert api.client.get(f"/v1/launches/{INCIDENT_LAUNCH_ID}/scorecard", params={"window_days": 0}).status_code == 422
