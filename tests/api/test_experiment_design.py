"""Plan, health, metric roles, decisions, sliced readouts and the experiment tables a build
writes, over HTTP on the sample warehouse; expected values from hand-written SQL over the raw
landing files (tests/oracle.py), scipy, and the API itself for the written tables."""

from __future__ import annotations

import math

import duckdb
import pytest
from scipy import stats

from tests.api.sql_endpoint.sql_servers import sql_server  # noqa: F401  (fixture)
from tests.api.test_auth import call, secured  # noqa: F401  (fixture)
from tests.oracle import EXPERIMENT_POPULATION as POPULATION
from tests.oracle import Oracle, hand_conversion

ELIGIBLE = """
    with ev as (select distinct e.* from events e join users u on u.user_id = e.user_id
                where u.is_internal is not true),
    bounds as (select max(event_ts) - interval 14 day as window_end from ev),
    entry as (select user_id, min(event_ts) as entered_at from ev, bounds
              where event_ts >= window_end - interval 28 day and event_ts < window_end group by 1)
    select entry.user_id,
           max(case when ev.revenue_usd > 0 and ev.event_ts >= entered_at
                     and ev.event_ts < entered_at + interval 14 day then 1 else 0 end) as converted,
           max(case when ev.revenue_usd > 0 and ev.event_ts < entered_at then 1 else 0 end) as converted_before
    from entry left join ev on ev.user_id = entry.user_id
        and ev.event_ts >= entered_at - interval 14 day and ev.event_ts < entered_at + interval 14 day
    group by 1
"""


def test_plan_from_the_warehouse_equals_hand_sql_and_scipy(api):
    body = api.client.get("/v1/experiments/plan", params={"metric": "conversion", "mde": 0.2, "weeks": 6}).json()
    oracle = Oracle(api.landing_dir)
    n, mean, variance, corr = oracle.sql(
        f"select count(*), avg(converted), var_samp(converted), corr(converted, converted_before) from ({ELIGIBLE})"
    )[0]
    assert body["eligible_users"] == n
    assert body["mean"] == pytest.approx(mean, rel=1e-12)
    assert body["variance"] == pytest.approx(variance, rel=1e-9)
    assert body["variance_reduction"] == pytest.approx(corr**2, rel=1e-6)
    assert body["weekly_users"] == pytest.approx(n / 4)
    # The sample size by hand: n = (z_{1-a/2} + z_power)^2 s2 (1 - rho^2) (1 + (1 + d)^2) / (mu d)^2.
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    s2 = variance * (1 - corr**2)
    assert body["users_per_arm"] == math.ceil(z**2 * s2 * (1 + 1.2**2) / (mean * 0.2) ** 2)
    assert body["weeks_needed"] == math.ceil(2 * body["users_per_arm"] / (n / 4))
    assert [w["week"] for w in body["weeks"]] == [1, 2, 3, 4, 5, 6]
    mdes = [w["mde"] for w in body["weeks"]]
    assert mdes == sorted(mdes, reverse=True)  # more weeks, smaller detectable effects
    # At the week the plan names, the power at the MDE reaches the target; the week before not.
    week = body["weeks"][body["weeks_needed"] - 1]
    assert week["power_at_mde"] >= 0.8 - 1e-9 and body["weeks"][body["weeks_needed"] - 2]["power_at_mde"] < 0.8


def test_plan_errors_name_the_field(api):
    for params, field in (
        ({"metric": "conversion"}, "mde"),
        ({"metric": "conversoin", "mde": 0.1}, "metric"),
        ({"metric": "conversion", "mde": -1}, "mde"),
    ):
        response = api.client.get("/v1/experiments/plan", params=params)
        assert response.status_code == 422, response.text
        assert field in response.text
    assert (
        "conversion"
        in api.client.get("/v1/experiments/plan", params={"metric": "conversoin", "mde": 0.1}).json()["error"][
            "suggestions"
        ]
    )


def test_health_of_the_sample_equals_hand_sql(api):
    oracle = Oracle(api.landing_dir)
    for experiment in api.client.get("/v1/experiments").json()["experiments"]:
        experiment_id = experiment["experiment_id"]
        body = api.client.get(f"/v1/experiments/{experiment_id}/health").json()
        several = oracle.sql(
            """
            select count(*) from (select a.user_id from experiment_assignments a join users u using (user_id)
                                  where u.is_internal is not true and a.experiment_id = ?
                                  group by 1 having count(distinct a.variant) > 1)""",
            [experiment_id],
        )[0][0]
        users = sum(v["users"] for v in experiment["variants"])
        assert body["multiple_exposure_users"] == several
        assert body["multiple_exposure_share"] == pytest.approx(several / users)
        assert body["multiple_exposure_warning"] is (several / users > 0.01)
        daily = oracle.sql(
            f"""select cast(assigned_at as date), variant, count(*) from ({POPULATION})
                               group by 1, 2 order by 1, 2""",
            [experiment_id],
        )
        got = {(d["date"], v): n for d in body["daily"] for v, n in d["users"].items() if n}
        assert got == {(str(day), variant): n for day, variant, n in daily}
        for day in body["daily"]:
            counts = list(day["users"].values())
            if sum(counts) >= 20:
                assert day["p_value"] == pytest.approx(stats.chisquare(counts).pvalue, rel=1e-9)
        assert body["assigned_before_start"] == body["assigned_after_end"] == 0
    checkout = api.client.get("/v1/experiments/exp_checkout_redesign/health").json()
    assert checkout["planned_users_per_variant"] is not None  # plan: {metric: conversion, mde: 0.3}
    assert checkout["planned_sample_reached"] is (
        checkout["smallest_variant_users"] >= checkout["planned_users_per_variant"]
    )
    assert api.client.get("/v1/experiments/exp_nope/health").status_code == 404


def test_readout_groups_metrics_by_role_and_decides(api):
    body = api.client.get("/v1/experiments/exp_checkout_redesign/readout").json()
    assert body["roles"] == {
        "goal": ["conversion"],
        "secondary": ["revenue_per_user", "sessions_per_user"],
        "guardrail": ["crashed"],
    }
    assert {r["metric"]: r["role"] for r in body["results"]} == {
        "conversion": "goal",
        "revenue_per_user": "secondary",
        "sessions_per_user": "secondary",
        "crashed": "guardrail",
    }
    # conversion is the planted, significant win; crashed does not move: ship.
    [decision] = body["decisions"]
    assert decision["decision"] == "ship" and decision["winning_goals"] == ["conversion"]
    # A feature's defaults: onboarding experiments have sessions_per_user as their goal.
    onboarding = api.client.get("/v1/experiments/exp_onboarding_tooltip/readout").json()
    assert onboarding["roles"]["goal"] == ["sessions_per_user"]
    assert onboarding["decisions"][0]["decision"] == "no clear signal"  # ended, null effect


def test_sliced_readouts_are_corrected_across_slices_and_capped(api):
    body = api.client.get(
        "/v1/experiments/exp_checkout_redesign/readout", params={"metrics": "conversion", "group_by": "country"}
    ).json()
    rows = [r for r in body["results"] if r["p_value"] is not None]
    ps = [r["p_value"] for r in rows]
    # Holm-Bonferroni by hand: sorted p_(i) * (m - i + 1), running max, capped at 1.
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    expected, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, ps[i] * (len(ps) - rank)))
        expected[i] = running
    assert [r["slice_adjusted_p_value"] for r in rows] == pytest.approx(expected)
    for r in rows:
        if r["p_value"] < 0.05 <= r["slice_adjusted_p_value"] and "too_few_users" not in r["flags"]:
            assert "not_significant_across_slices" in r["flags"] and "not judged" in r["verdict"]
    assert body["decisions"] == []
    too_many = api.client.get(
        "/v1/experiments/exp_checkout_redesign/readout",
        params={"metrics": "conversion", "group_by": "platform,country,user__signup_at__day"},
    )
    assert too_many.status_code == 422
    error = too_many.json()["error"]
    assert error["field"] == "group_by" and "more than the 200" in error["message"]


def _api_rows(api, experiment_id: str, metrics: str, slices: list[str]) -> dict[str, dict]:
    """The readout API's rows keyed like fct_experiment_results."""
    out = {}
    for group_by in ["", *slices]:
        body = api.client.get(
            f"/v1/experiments/{experiment_id}/readout", params={"metrics": metrics, "group_by": group_by}
        ).json()
        decisions = {d["variant"]: d["decision"] for d in body["decisions"]}
        for row in body["results"]:
            key = ",".join(f"{k}={'(none)' if v is None else v}" for k, v in row["slice"].items()) or "all"
            out[f"{experiment_id}|{row['variant']}|{row['metric']}|{key}"] = {
                "role": row["role"],
                "control_users": row["control_users"],
                "variant_users": row["variant_users"],
                "control_mean": row["control_mean"],
                "variant_mean": row["variant_mean"],
                "relative_lift": row["relative_lift"],
                "ci_low": row["ci_low"],
                "ci_high": row["ci_high"],
                "p_value": row["p_value"],
                "chance_to_win": row["chance_to_win"],
                "verdict": row["verdict"],
                "flags": ",".join(row["flags"]) or None,
                "adjusted_p_value": row["slice_adjusted_p_value"] if row["slice"] else row["adjusted_p_value"],
                "cuped_p_value": row["cuped"]["p_value"] if row["cuped"] else None,
                "decision": None if row["slice"] else decisions.get(row["variant"]),
            }
    return out


def assert_tables_equal_api(api, fetch) -> None:
    """`fetch(sql)` -> rows as dicts: the written tables against the API, row for row."""
    expected = {}
    for experiment in api.client.get("/v1/experiments").json()["experiments"]:
        readout = api.client.get(f"/v1/experiments/{experiment['experiment_id']}/readout").json()
        metrics = ",".join(readout["roles"]["goal"] + readout["roles"]["secondary"] + readout["roles"]["guardrail"])
        expected.update(_api_rows(api, experiment["experiment_id"], metrics, ["platform"]))
    written = {r["experiment_result_key"]: r for r in fetch("select * from marts.fct_experiment_results")}
    assert set(written) == set(expected)
    for key, want in expected.items():
        got = written[key]
        for column, value in want.items():
            if isinstance(value, float):
                assert got[column] == pytest.approx(value, rel=1e-12, abs=1e-15), (key, column)
            else:
                assert got[column] == value, (key, column)
    health = {r["experiment_id"]: r for r in fetch("select * from marts.fct_experiment_health")}
    for experiment_id, row in health.items():
        body = api.client.get(f"/v1/experiments/{experiment_id}/health").json()
        for column in (
            "users",
            "multiple_exposure_users",
            "assigned_before_start",
            "assigned_after_end",
            "planned_users_per_variant",
            "planned_sample_reached",
            "srm_warning",
        ):
            assert row[column] == body[column], (experiment_id, column)
        assert row["srm_p_value"] == pytest.approx(body["srm_p_value"], rel=1e-12)
        assert row["imbalanced_days"] == len(body["imbalanced_days"])
        assert row["warnings"] == ("; ".join(body["warnings"]) or None)


def test_written_tables_equal_the_api_readouts_on_duckdb(api):
    con = duckdb.connect(str(api.warehouse), read_only=True)

    def fetch(sql):
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    try:
        assert_tables_equal_api(api, fetch)
    finally:
        con.close()


def test_written_tables_read_through_the_sql_endpoint_equal_the_api(api, sql_server):
    """What Metabase or Superset would read: the marts tables over the PostgreSQL wire."""
    import psycopg

    with psycopg.connect(sql_server.dsn()) as conn:

        def fetch(sql):
            cursor = conn.execute(sql)
            names = [d.name for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

        assert_tables_equal_api(api, fetch)


def test_a_restricted_token_plans_and_checks_health_over_its_users_only(secured):
    """A row-level policy (region) holds for plans and health too."""
    region, oracle, token = secured["region"], secured["oracle"], secured["tokens"]["regional"]
    body = call(secured, token, "GET", "/v1/experiments/plan", params={"metric": "conversion", "mde": 0.2}).json()
    in_region = (
        f"select e.* from ({ELIGIBLE}) e join users u on u.user_id = e.user_id "
        "join accounts ac on ac.account_id = u.account_id where ac.region = ?"
    )
    n, mean = oracle.sql(f"select count(*), avg(converted) from ({in_region})", [region])[0]
    assert body["eligible_users"] == n and body["mean"] == pytest.approx(mean, rel=1e-12)
    everyone = call(
        secured, secured["tokens"]["admin"], "GET", "/v1/experiments/plan", params={"metric": "conversion", "mde": 0.2}
    ).json()
    assert n < everyone["eligible_users"]
    health = call(secured, token, "GET", "/v1/experiments/exp_checkout_redesign/health").json()
    expected = hand_conversion(oracle, "exp_checkout_redesign", region)
    assert health["variants"] == {k: users for k, (users, _) in expected.items()}
