"""Experiment routes over HTTP on the sample warehouse, against hand-written SQL over the raw
landing files (populations, windows, per-user values) and scipy (SRM); the statistics
themselves are checked against GrowthBook's gbstats in tests/metrics/stats/."""

from __future__ import annotations

import pytest
from scipy import stats

from tests.oracle import Oracle

POPULATION = """
    with first as (
        select a.experiment_id, a.user_id, a.variant, a.assigned_at,
               row_number() over (partition by a.experiment_id, a.user_id order by a.assigned_at, a.variant) as rn
        from experiment_assignments a join users u on u.user_id = a.user_id
        where u.is_internal is not true)
    select f.user_id, f.variant, f.assigned_at,
           coalesce(x.ended_at, (select max(event_ts) + interval 1 microsecond from events)) as window_end
    from first f join experiments x on x.experiment_id = f.experiment_id
    where f.rn = 1 and f.experiment_id = ?
"""


def hand_conversion(oracle: Oracle, experiment_id: str) -> dict[str, tuple[int, float]]:
    rows = oracle.sql(f"""
        with p as ({POPULATION}),
        per_user as (
            select p.variant, p.user_id,
                   max(case when e.revenue_usd > 0 then 1 else 0 end) as converted
            from p left join (select distinct * from events) e
              on e.user_id = p.user_id and e.event_ts >= p.assigned_at and e.event_ts < p.window_end
            group by 1, 2)
        select variant, count(*), avg(converted) from per_user group by 1 order by 1""", [experiment_id])
    return {variant: (n, mean) for variant, n, mean in rows}


def test_experiments_are_listed_with_their_assigned_users(api):
    experiments = {e["experiment_id"]: e for e in api.client.get("/v1/experiments").json()["experiments"]}
    oracle = Oracle(api.landing_dir)
    for experiment_id, experiment in experiments.items():
        expected = dict(oracle.sql(f"select variant, count(*) from ({POPULATION}) group by 1", [experiment_id]))
        assert {v["variant"]: v["users"] for v in experiment["variants"]} == expected
        assert experiment["users"] == sum(expected.values())
    assert {e["status"] for e in experiments.values()} == {"ended", "running"}


def test_readout_of_the_planted_effect(api):
    body = api.client.get("/v1/experiments/exp_checkout_redesign/readout",
                          params={"metrics": "conversion,revenue_per_user,crashed"}).json()
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
    body = api.client.get("/v1/experiments/exp_onboarding_tooltip/readout",
                          params={"metrics": "conversion,sessions_per_user"}).json()
    for row in body["results"]:
        assert row["p_value"] > 0.05, row
        assert row["ci_low"] < 0 < row["ci_high"]
        assert row["relative_lift"] == pytest.approx(row["variant_mean"] / row["control_mean"] - 1)
        cuped = row["cuped"]
        assert cuped["variance_reduction"] >= 0 and cuped["p_value"] > 0.05
        # Regression adjustment narrows the interval by the variance it removes.
        assert cuped["ci_high"] - cuped["ci_low"] <= row["ci_high"] - row["ci_low"] + 1e-12


def test_readout_options_slices_corrections_and_errors(api):
    sliced = api.client.get("/v1/experiments/exp_checkout_redesign/readout",
                            params={"metrics": "conversion", "group_by": "platform"}).json()
    assert {r["slice"]["platform"] for r in sliced["results"]} == {"web", "ios", "android"}
    corrected = api.client.get("/v1/experiments/exp_checkout_redesign/readout",
                               params={"metrics": "conversion,revenue_per_user", "correction": "holm-bonferroni"}).json()
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
    assert bad_metric.status_code == 400 and "conversion" in bad_metric.json()["error"]["message"]
