"""A whole readout row against GrowthBook's own entry point, process_experiment_results."""

from __future__ import annotations

import pytest
from gbstats_cases import assert_close, cases

from metrics.stats.comparison import compare_variant
from metrics.stats.results import ZERO_NEGATIVE_VARIANCE
from metrics.stats.srm import check_srm
from metrics.stats.statistics import (
    ProportionStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    TestStatistic,
)

RUNNER_CASES = cases("runner")


def _base(kind: str, n: int, total: float, sum_squares: float):
    return ProportionStatistic(n, total) if kind == "binomial" else SampleMeanStatistic(n, total, sum_squares)


def _statistic(settings: dict, row: dict) -> TestStatistic:
    n = row["users"]
    post = _base(settings["main_metric_type"], n, row["main_sum"], row["main_sum_squares"])
    if settings["statistic_type"] == "mean":
        return post
    pre = _base(settings["covariate_metric_type"], n, row["covariate_sum"], row["covariate_sum_squares"])
    return RegressionAdjustedStatistic(
        post_statistic=post,  # type: ignore[arg-type]
        pre_statistic=pre,  # type: ignore[arg-type]
        post_pre_sum_of_products=row["main_covariate_sum_product"],
        n=n,
    )


def _runner_id(case: dict) -> str:
    analysis = case["analysis"]
    engine = analysis.get("stats_engine", "bayesian")
    sequential = "-sequential" if analysis.get("sequential_testing_enabled") else ""
    return f"{case['metric']}-{engine}{sequential}"


@pytest.mark.parametrize("case", RUNNER_CASES, ids=[_runner_id(c) for c in RUNNER_CASES])
def test_readout_row_matches_growthbooks_runner(case: dict) -> None:
    settings, rows, expected = case["metric_settings"], case["rows"], case["gbstats"]
    control, treatment = (
        _statistic(settings, rows["control"]),
        _statistic(settings, rows["treatment"]),
    )
    row = compare_variant(
        control,
        treatment,
        lower_is_better=settings.get("inverse", False),
        sequential=case["analysis"].get("sequential_testing_enabled", False),
    )
    srm = check_srm([rows["control"]["users"], rows["treatment"]["users"]])
    assert_close(srm.p_value, expected["srm"], "srm")
    assert expected["error_message"] is None and row.error is None
    assert_close(row.relative_lift, expected["expected"], "relative_lift")  # type: ignore[arg-type]
    if case["analysis"].get("stats_engine") == "frequentist":
        assert_close(row.ci_low, expected["ci"][0], "ci_low")  # type: ignore[arg-type]
        assert_close(row.ci_high, expected["ci"][1], "ci_high")  # type: ignore[arg-type]
        assert_close(row.p_value, expected["p_value"], "p_value")  # type: ignore[arg-type]
        assert_close(row.relative.stddev, expected["uplift_stddev"], "stddev")
    else:
        assert_close(row.chance_to_win, expected["chance_to_win"], "chance_to_win")  # type: ignore[arg-type]
        assert_close(row.bayesian.ci_low, expected["ci"][0], "credible low")
        assert_close(row.bayesian.ci_high, expected["ci"][1], "credible high")
        assert_close(row.bayesian.risk_control, expected["risk"][0], "risk_control")
        assert_close(row.bayesian.risk_treatment, expected["risk"][1], "risk_treatment")


def test_row_carries_the_readout_fields() -> None:
    row = compare_variant(ProportionStatistic(5012, 506), ProportionStatistic(4988, 564))
    assert (row.control_users, row.variant_users) == (5012, 4988)
    assert row.control_mean == 506 / 5012 and row.variant_mean == 564 / 4988
    assert row.relative_lift == pytest.approx(row.variant_mean / row.control_mean - 1, rel=1e-12)
    assert row.absolute_lift == pytest.approx(row.variant_mean - row.control_mean, rel=1e-12)
    assert row.absolute_ci_low < row.absolute_lift < row.absolute_ci_high  # type: ignore[operator]
    assert (row.ci_low, row.ci_high) == row.relative.ci
    assert row.chance_to_win == row.bayesian.chance_to_win
    assert row.cuped is None


def test_guardrail_chance_to_win_is_for_lower() -> None:
    fewer_crashes = compare_variant(ProportionStatistic(5012, 50), ProportionStatistic(4988, 40), lower_is_better=True)
    assert fewer_crashes.relative_lift < 0  # type: ignore[operator]
    assert fewer_crashes.chance_to_win > 0.5  # type: ignore[operator]


def test_cuped_row_reports_variance_reduction() -> None:
    def ra(n, post_sum, post_ss, pre_sum, pre_ss, products):
        return RegressionAdjustedStatistic(
            post_statistic=SampleMeanStatistic(n, post_sum, post_ss),
            pre_statistic=SampleMeanStatistic(n, pre_sum, pre_ss),
            post_pre_sum_of_products=products,
            n=n,
        )

    rows = {c["metric"]: c["rows"] for c in RUNNER_CASES}["sessions_cuped"]
    control = ra(5012, 15100.0, 61300.0, 14800.0, 59100.0, 52000.0)
    treatment = ra(4988, 15400.0, 63900.0, 14750.0, 58800.0, 52900.0)
    assert rows["control"]["main_sum"] == control.post_statistic.sum
    row = compare_variant(control, treatment)
    assert row.cuped is not None and row.cuped.theta > 0
    assert 0 < row.cuped.variance_reduction < 1
    assert row.control_mean == control.post_statistic.mean  # means are reported unadjusted


def test_degenerate_row_keeps_the_raw_lift_and_drops_inference() -> None:
    row = compare_variant(ProportionStatistic(50, 40), ProportionStatistic(50, 50))
    assert row.error == ZERO_NEGATIVE_VARIANCE
    assert row.relative_lift == pytest.approx(0.25)
    assert (row.ci_low, row.ci_high, row.p_value, row.chance_to_win) == (None, None, None, None)
    # The reason in words; the code stays in `error` (and in a readout's flags).
    assert row.verdict("conversion") == (
        "treatment: conversion cannot be compared with control: every user of a variant has "
        "the same value, so there is no spread to test against"
    )
    assert "ZERO_NEGATIVE" not in row.verdict("conversion")

    nothing = compare_variant(ProportionStatistic(50, 0), ProportionStatistic(50, 0))
    assert nothing.relative_lift is None and nothing.absolute_lift == 0.0


def test_the_relative_interval_of_a_nonnegative_metric_stops_at_minus_100_percent() -> None:
    """A 10-user slice: 7 of 10 convert in control, 2 of 10 in treatment. The delta-method
    interval (gbstats's) reaches below -100%; the row's `ci_low` is bounded at -1, the test
    itself is unchanged."""
    from scipy import stats

    control, treatment = ProportionStatistic(10, 7), ProportionStatistic(10, 2)
    # The delta-method interval by hand (per-unit variances p(1-p), Welch dof, Student's t).
    mc, mt, vc, vt = 0.7, 0.2, 0.7 * 0.3, 0.2 * 0.8
    lift = mt / mc - 1
    se = (vt / (mc**2 * 10) + vc * mt**2 / (mc**4 * 10)) ** 0.5
    dof = (vt / 10 + vc / 10) ** 2 / (vt**2 / (100 * 9) + vc**2 / (100 * 9))
    low = lift - stats.t.ppf(0.975, dof) * se
    assert low < -1

    row = compare_variant(control, treatment, nonnegative=True)
    assert row.relative.ci_low == pytest.approx(low, rel=1e-9)
    assert row.ci_low == -1.0 and row.relative_ci_bounded
    assert row.ci_high == pytest.approx(lift + stats.t.ppf(0.975, dof) * se, rel=1e-9)
    assert row.p_value == pytest.approx(2 * stats.t.sf(abs(lift / se), dof), rel=1e-9)
    assert "-100.0%" in row.verdict("conversion")

    unbounded = compare_variant(control, treatment)  # a metric that can be negative
    assert unbounded.ci_low == pytest.approx(low, rel=1e-9) and not unbounded.relative_ci_bounded


def test_relative_and_absolute_tests_that_disagree_make_the_row_inconclusive() -> None:
    """The sample's android conversion row of exp_checkout_redesign (sums from the warehouse):
    the absolute (Welch) interval excludes 0, the delta-method relative one does not."""
    from scipy import stats

    control, treatment = ProportionStatistic(144, 48), ProportionStatistic(143, 66)
    welch = stats.ttest_ind_from_stats(
        66 / 143,
        (66 / 143 * (1 - 66 / 143)) ** 0.5,
        143,
        48 / 144,
        (48 / 144 * (1 - 48 / 144)) ** 0.5,
        144,
        equal_var=False,
    )
    row = compare_variant(control, treatment)
    assert row.absolute.p_value == pytest.approx(welch.pvalue, rel=1e-6)
    assert row.absolute.p_value < 0.05 < row.p_value
    assert row.tests_disagree and row.conclusion == "inconclusive"
    assert row.verdict("conversion").startswith("treatment: inconclusive for conversion")
