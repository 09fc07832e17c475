"""Experiment routes over HTTP on the sample warehouse, against hand-written SQL over the raw
landing files (populations, windows, per-user values) and scipy (SRM); the statistics
themselves are checked against GrowthBook's gbstats in tests/metrics/stats/."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
from scipy import stats

from northstar.build import publish
from tests.conftest import Server
from tests.oracle import EXPERIMENT_POPULATION as POPULATION
from tests.oracle import Oracle, hand_conversion


def test_experiments_are_listed_with_their_assigned_users(api):
    experiments = {e["experiment_id"]: e for e in api.client.get("/v1/experiments").json()["experiments"]}
    oracle = Oracle(api.landing_dir)
    for experiment_id, experiment in experiments.items():
        expected = dict(oracle.sql(f"select variant, count(*) from ({POPULATION}) group by 1", [experiment_id]))
        assert {v["variant"]: v["users"] for v in experiment["variants"]} == expected
        assert experiment["users"] == sum(expected.values())
    assert {e["status"] for e in experiments.values()} == {"ended", "running"}


def test_readout_of_the_planted_effect(api):
    body = api.client.get(
        "/v1/experiments/exp_checkout_redesign/readout", params={"metrics": "conversion,revenue_per_user,crashed"}
    ).json()
    expected = hand_conversion(Oracle(api.landing_dir), "exp_checkout_redesign")
    assert {v["variant"]: v["users"] for v in body["variants"]} == {k: n for k, (n, _) in expected.items()}
    conversion = next(r for r in body["results"] if r["metric"] == "conversion")
    assert conversion["control_users"] == expected["control"][0]
    assert conversion["control_mean"] == pytest.approx(expected["control"][1], rel=1e-12)
    assert conversion["variant_mean"] == pytest.approx(expected["treatment"][1], rel=1e-12)
    assert conversion["relative_lift"] == pytest.approx(expected["treatment"][1] / expected["control"][1] - 1)
    assert conversion["ci_low"] > 0 and conversion["p_value"] < 0.05 and conversion["chance_to_win"] > 0.95
    assert conversion["ci_low"] < conversion["relative_lift"] < conversion["ci_high"]
    assert conversion["verdict"].startswith("treatment raises conversion by") and "significant" in conversion["verdict"]
    crashed = next(r for r in body["results"] if r["metric"] == "crashed")
    assert "guardrail_regression" not in crashed["flags"]
    counts = [v["users"] for v in body["variants"]]
    assert body["srm_p_value"] == pytest.approx(stats.chisquare(counts).pvalue, rel=1e-9)
    assert body["srm_warning"] is False


def test_null_experiment_is_not_significant_and_cuped_reports_its_reduction(api):
    body = api.client.get(
        "/v1/experiments/exp_onboarding_tooltip/readout", params={"metrics": "conversion,sessions_per_user"}
    ).json()
    for row in body["results"]:
        assert row["p_value"] > 0.05, row
        assert row["ci_low"] < 0 < row["ci_high"]
        assert row["relative_lift"] == pytest.approx(row["variant_mean"] / row["control_mean"] - 1)
        cuped = row["cuped"]
        assert cuped["variance_reduction"] >= 0 and cuped["p_value"] > 0.05
        # Regression adjustment narrows the interval by the variance it removes.
        assert cuped["ci_high"] - cuped["ci_low"] <= row["ci_high"] - row["ci_low"] + 1e-12


def test_readouts_cannot_mislead(api):
    """Tiny slices are not judged, relative intervals of 0/1 metrics stop at -100%, no verdict
    contradicts an interval of its row, and verdicts carry no internal codes."""
    import re

    body = api.client.get(
        "/v1/experiments/exp_checkout_redesign/readout", params={"group_by": "platform,country,plan"}
    ).json()
    assert body["results"]
    for row in body["results"]:
        sentence = row["verdict"]
        assert not re.search(r"[A-Z]{2,}_[A-Z_]+", sentence), sentence
        if row["error"]:
            assert row["error"].lower() in row["flags"]
        if "too_few_users" in row["flags"]:
            assert ", significant" not in sentence and "inconclusive" not in sentence, sentence
            assert min(row["control_users"], row["variant_users"]) < 100
            assert "not judged" in sentence or "cannot be compared" in sentence or "no relative" in sentence
        if row["metric"] in ("conversion", "crashed") and row["ci_low"] is not None:
            assert row["ci_low"] >= -1.0
            assert (row["ci_low"] == -1.0) == ("relative_ci_bounded" in row["flags"])
    # The slice of the report: 7 of 12 converted in control, 2 of 10 in treatment.
    (tiny,) = [
        r
        for r in body["results"]
        if r["metric"] == "conversion" and r["slice"] == {"platform": "ios", "country": "US", "plan": "free"}
    ]
    assert (tiny["control_users"], tiny["variant_users"]) == (12, 10)
    mc, mt = 7 / 12, 2 / 10
    se = ((mt * (1 - mt)) / (mc**2 * 10) + (mc * (1 - mc)) * mt**2 / (mc**4 * 12)) ** 0.5
    dof = ((mt * (1 - mt)) / 10 + (mc * (1 - mc)) / 12) ** 2 / (
        (mt * (1 - mt)) ** 2 / (10**2 * 9) + (mc * (1 - mc)) ** 2 / (12**2 * 11)
    )
    assert mt / mc - 1 - stats.t.ppf(0.975, dof) * se < -1  # the unbounded interval: below -100%
    assert tiny["ci_low"] == -1.0
    assert tiny["ci_high"] == pytest.approx(mt / mc - 1 + stats.t.ppf(0.975, dof) * se, rel=1e-9)
    assert tiny["verdict"].startswith("treatment: conversion not judged: only 12 users in control")
    assert tiny["cuped"]["verdict"].startswith("treatment: conversion not judged")

    # By platform, android's relative interval includes 0 while its absolute one does not:
    # the verdict says so instead of "no significant change".
    by_platform = api.client.get(
        "/v1/experiments/exp_checkout_redesign/readout", params={"metrics": "conversion", "group_by": "platform"}
    ).json()
    (android,) = [r for r in by_platform["results"] if r["slice"] == {"platform": "android"}]
    nc, nt = android["control_users"], android["variant_users"]
    pc, pt = android["control_mean"], android["variant_mean"]
    # Welch's interval on the difference of the two shares (per-user variance p (1 - p))
    vc, vt = pc * (1 - pc), pt * (1 - pt)
    se = (vt / nt + vc / nc) ** 0.5
    dof = (vt / nt + vc / nc) ** 2 / (vt**2 / (nt**2 * (nt - 1)) + vc**2 / (nc**2 * (nc - 1)))
    low, high = pt - pc - stats.t.ppf(0.975, dof) * se, pt - pc + stats.t.ppf(0.975, dof) * se
    assert (android["absolute_ci_low"], android["absolute_ci_high"]) == (
        pytest.approx(low, rel=1e-6),
        pytest.approx(high, rel=1e-6),
    )
    assert low > 0 and android["ci_low"] < 0 < android["ci_high"]
    assert "tests_disagree" in android["flags"] and "cuped_differs" in android["flags"]
    assert android["verdict"].startswith("treatment: inconclusive for conversion")
    for row in by_platform["results"]:
        judged = ", significant" in row["verdict"]
        assert judged == (row["p_value"] < 0.05 and row["absolute_ci_low"] > 0), row


def test_readout_options_slices_corrections_and_errors(api):
    sliced = api.client.get(
        "/v1/experiments/exp_checkout_redesign/readout", params={"metrics": "conversion", "group_by": "platform"}
    ).json()
    assert {r["slice"]["platform"] for r in sliced["results"]} == {"web", "ios", "android"}
    corrected = api.client.get(
        "/v1/experiments/exp_checkout_redesign/readout",
        params={"metrics": "conversion,revenue_per_user", "correction": "holm-bonferroni"},
    ).json()
    for row in corrected["results"]:
        assert row["adjusted_p_value"] >= row["p_value"]
    metrics = api.client.get("/v1/experiments/exp_checkout_redesign/metrics").json()["metrics"]
    names = {m["name"]: m for m in metrics}
    assert {"conversion", "revenue_per_user", "sessions_per_user", "crashed", "arpu"} <= set(names)
    assert names["crashed"]["lower_is_better"] and names["conversion"]["kind"] == "binomial"
    assert names["arpu"]["kind"] == "ratio"
    unknown = api.client.get("/v1/experiments/exp_checkout_redesing/readout")
    assert unknown.status_code == 404 and "exp_checkout_redesign" in unknown.json()["error"]["message"]
    bad_metric = api.client.get("/v1/experiments/exp_checkout_redesign/readout", params={"metrics": "convrsion"})
    assert bad_metric.status_code == 422 and "conversion" in bad_metric.json()["error"]["message"]
    no_metric = api.client.get("/v1/experiments/exp_checkout_redesign/readout", params={"metrics": " , "})
    assert no_metric.status_code == 422 and "conversion" in no_metric.json()["error"]["message"]


def test_a_repeated_readout_is_served_from_the_cache(api):
    # options no other test asks for, so the first request cannot have been cached before
    params = {"metrics": "conversion,revenue_per_user", "alpha": 0.0421, "group_by": "plan"}
    first = api.client.get("/v1/experiments/exp_checkout_redesign/readout", params=params).json()
    again = api.client.get("/v1/experiments/exp_checkout_redesign/readout", params=params).json()
    assert first["cached"] is False and again["cached"] is True
    assert again["build_id"] == first["build_id"]
    assert again["results"] == first["results"] and again["variants"] == first["variants"]
    # the same request spelled differently: whitespace, and pre_days that CUPED-off readouts ignore
    plain = {"metrics": "conversion", "alpha": 0.0421, "cuped": "false"}
    assert api.client.get("/v1/experiments/exp_checkout_redesign/readout", params=plain).json()["cached"] is False
    respelled = {**plain, "metrics": " conversion ", "pre_days": 30}
    assert api.client.get("/v1/experiments/exp_checkout_redesign/readout", params=respelled).json()["cached"] is True
    # a different option is a different readout
    other = api.client.get("/v1/experiments/exp_checkout_redesign/readout", params={**params, "alpha": 0.0422}).json()
    assert other["cached"] is False


def test_a_new_build_invalidates_the_readout_cache(built_warehouse, tmp_path):
    """A copy of the session's build published as a new build (the same atomic symlink swap
    `northstar build` does; tests/api/test_swap.py runs the real rebuild): the first readout on
    it is computed afresh."""

    def copy_build(build_id: str) -> Path:
        source = Path(os.path.realpath(built_warehouse.warehouse)).parent
        target = tmp_path / "builds" / build_id
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.wal"))
        info = json.loads((target / "build.json").read_text())
        (target / "build.json").write_text(json.dumps({**info, "build_id": build_id}))
        return target / Path(os.path.realpath(built_warehouse.warehouse)).name

    warehouse = tmp_path / "northstar.duckdb"
    publish(copy_build("20990101T000000Z-first"), warehouse)
    server = Server(warehouse, env={"NORTHSTAR_SQL_PORT": "0"})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            url = "/v1/experiments/exp_checkout_redesign/readout"
            params = {"metrics": "conversion"}
            first = client.get(url, params=params).json()
            assert first["cached"] is False and first["build_id"] == "20990101T000000Z-first"
            assert client.get(url, params=params).json()["cached"] is True
            publish(copy_build("20990101T000001Z-second"), warehouse)
            after = client.get(url, params=params).json()
            assert after["build_id"] == "20990101T000001Z-second" and after["cached"] is False
            assert after["results"] == first["results"]
            assert client.get(url, params=params).json()["cached"] is True
    finally:
        server.stop()


HAND_STATISTICS = f"""
    with p as ({POPULATION}),
    e as (select distinct * from events),
    ev as (
        select p.user_id,
               max(case when e.event_ts >= p.assigned_at and e.revenue_usd > 0 then 1 else 0 end) as conversion,
               max(case when e.event_ts < p.assigned_at and e.revenue_usd > 0 then 1 else 0 end) as conversion_pre,
               sum(case when e.event_ts >= p.assigned_at then coalesce(e.revenue_usd, 0) else 0 end) as revenue,
               sum(case when e.event_ts < p.assigned_at then coalesce(e.revenue_usd, 0) else 0 end) as revenue_pre,
               count(distinct case when e.event_ts >= p.assigned_at then e.session_id end) as sessions,
               count(distinct case when e.event_ts < p.assigned_at then e.session_id end) as sessions_pre,
               max(case when e.event_ts >= p.assigned_at then 1 else 0 end) as active
        from p join e on e.user_id = p.user_id
                     and e.event_ts >= p.assigned_at - interval 14 day and e.event_ts < p.window_end
        group by 1),
    er as (
        select p.user_id,
               max(case when r.occurred_at >= p.assigned_at then 1 else 0 end) as crashed,
               max(case when r.occurred_at < p.assigned_at then 1 else 0 end) as crashed_pre
        from p join errors r on r.user_id = p.user_id and r.severity = 'crash'
                            and r.occurred_at >= p.assigned_at - interval 14 day
                            and r.occurred_at < (select ended_at from experiments where experiment_id = ?)
        group by 1),
    u as (
        select p.variant,
               coalesce(ev.conversion, 0) as c, coalesce(ev.conversion_pre, 0) as c0,
               coalesce(ev.revenue, 0)::double as r, coalesce(ev.revenue_pre, 0)::double as r0,
               coalesce(ev.sessions, 0) as s, coalesce(ev.sessions_pre, 0) as s0,
               coalesce(ev.active, 0) as a, coalesce(er.crashed, 0) as k, coalesce(er.crashed_pre, 0) as k0
        from p left join ev on ev.user_id = p.user_id left join er on er.user_id = p.user_id)
    select variant, count(*),
           sum(c), sum(c * c), sum(c0), sum(c0 * c0), sum(c * c0),
           sum(r), sum(r * r), sum(r0), sum(r0 * r0), sum(r * r0),
           sum(s), sum(s * s), sum(s0), sum(s0 * s0), sum(s * s0),
           sum(k), sum(k * k), sum(k0), sum(k0 * k0), sum(k * k0),
           sum(a), sum(a * a), sum(r * a)
    from u group by 1 order by 1
"""


def test_sufficient_statistics_of_every_metric_match_hand_written_sql(built_warehouse):
    """All four contract metrics with their pre-period (CUPED) and the arpu ratio, in one
    statement, against hand-written SQL over the raw landing files."""
    from metrics.engine import MetricsEngine

    expected = Oracle(built_warehouse.landing_dir).sql(HAND_STATISTICS, ["exp_checkout_redesign"] * 2)
    engine = MetricsEngine.open(built_warehouse.warehouse)
    try:
        experiments = engine.experiments
        names = ["conversion", "revenue_per_user", "sessions_per_user", "crashed", "arpu"]
        plan, stats = experiments.statistics(
            experiments.experiment("exp_checkout_redesign"), [experiments.metric(n) for n in names], pre_days=14
        )
    finally:
        engine.close()
    conversion, revenue, sessions, crashed = (at[0] for at in plan.positions[:4])
    revenue_again, active = plan.positions[4]
    assert revenue_again == revenue  # revenue is read once for both metrics
    assert plan.pre == tuple(sorted((conversion, revenue, sessions, crashed)))
    assert [s.variant for s in stats] == [row[0] for row in expected]
    for stat, row in zip(stats, expected):
        got = [stat.n]
        for i in (conversion, revenue, sessions, crashed):
            got += [
                stat.sums[f"x{i}_sum"],
                stat.sums[f"x{i}_sum_sq"],
                stat.sums[f"pre{i}_sum"],
                stat.sums[f"pre{i}_sum_sq"],
                stat.sums[f"x{i}_pre{i}_sum"],
            ]
        got += [stat.sums[f"x{active}_sum"], stat.sums[f"x{active}_sum_sq"], stat.sums[f"x{revenue}_x{active}_sum"]]
        assert got == pytest.approx([float(v) for v in row[1:]], rel=1e-9, abs=1e-9)
