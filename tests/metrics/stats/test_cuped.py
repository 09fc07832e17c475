"""CUPED: gbstats's theta and regression-adjusted tests, and the variance reduction."""

from __future__ import annotations

import numpy as np
import pytest
from gbstats_cases import assert_close, build, cases

from metrics.stats.bayesian import bayesian_ab_test
from metrics.stats.cuped import compute_theta, cuped_result, regression_adjust
from metrics.stats.results import NO_UNITS_IN_VARIATION, ZERO_NEGATIVE_BASELINE_VARIATION
from metrics.stats.statistics import (
    ProportionStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from metrics.stats.ttest import two_sided_ttest

CUPED_CASES = cases("cuped")


def _assert_frequentist(result, expected: dict) -> None:
    assert result.error == expected["error_message"]
    assert_close(result.expected, expected["expected"], "expected")
    assert_close(result.ci_low, expected["ci"][0], "ci_low")
    assert_close(result.ci_high, expected["ci"][1], "ci_high")
    assert_close(result.p_value, expected["p_value"], "p_value")
    assert_close(result.stddev, expected["uplift_stddev"], "stddev")


@pytest.mark.parametrize("case", CUPED_CASES, ids=[c["name"] for c in CUPED_CASES])
def test_cuped_matches_gbstats(case: dict) -> None:
    control, treatment = build(case["control"]), build(case["treatment"])
    expected = case["gbstats"]
    assert_close(compute_theta(control, treatment), expected["theta"], "theta")
    for difference_type in ("relative", "absolute"):
        want = expected[difference_type]
        adjusted = two_sided_ttest(control, treatment, difference_type=difference_type)
        _assert_frequentist(adjusted, want["adjusted"])
        unadjusted = two_sided_ttest(control.post_statistic, treatment.post_statistic, difference_type=difference_type)
        _assert_frequentist(unadjusted, want["unadjusted"])
        adjusted_control, adjusted_treatment = regression_adjust(control, treatment)
        assert_close(adjusted_control.mean, want["adjusted_control_mean"], "control mean")
        assert_close(adjusted_treatment.mean, want["adjusted_treatment_mean"], "treatment mean")
        assert_close(adjusted_control.variance, want["adjusted_control_variance"], "control variance")
        assert_close(adjusted_treatment.variance, want["adjusted_treatment_variance"], "treatment variance")

        summary = cuped_result(control, treatment, difference_type)
        if want["adjusted"]["error_message"] is None and want["unadjusted"]["error_message"] is None:
            reduction = 1 - (want["adjusted"]["uplift_stddev"] / want["unadjusted"]["uplift_stddev"]) ** 2
            assert summary.error is None
            assert summary.variance_reduction == pytest.approx(reduction, rel=1e-6, abs=1e-12)
            assert_close(summary.adjusted_stddev, want["adjusted"]["uplift_stddev"], "adjusted stddev")
            assert_close(summary.unadjusted_stddev, want["unadjusted"]["uplift_stddev"], "unadjusted")

    bayesian = bayesian_ab_test(control, treatment)
    want = expected["bayesian_relative"]
    assert bayesian.error == want["error_message"]
    assert_close(bayesian.chance_to_win, want["chance_to_win"], "chance_to_win")
    assert_close(bayesian.expected, want["expected"], "expected")
    assert_close(bayesian.risk_control, want["risk"][0], "risk_control")
    assert_close(bayesian.risk_treatment, want["risk"][1], "risk_treatment")


def _ra(post: np.ndarray, pre: np.ndarray) -> RegressionAdjustedStatistic:
    return RegressionAdjustedStatistic(
        post_statistic=SampleMeanStatistic(len(post), float(post.sum()), float((post**2).sum())),
        pre_statistic=SampleMeanStatistic(len(pre), float(pre.sum()), float((pre**2).sum())),
        post_pre_sum_of_products=float((post * pre).sum()),
        n=len(post),
    )


def test_theta_is_the_pooled_regression_slope_and_reduction_the_r_squared() -> None:
    rng = np.random.default_rng(7)
    pre_a, pre_b = rng.normal(10, 3, 20000), rng.normal(10, 3, 20000)
    post_a = 0.9 * pre_a + rng.normal(0, 2, 20000)
    post_b = 0.9 * pre_b + rng.normal(0.3, 2, 20000)
    a, b = _ra(post_a, pre_a), _ra(post_b, pre_b)

    pre, post = np.concatenate([pre_a, pre_b]), np.concatenate([post_a, post_b])
    slope = np.cov(post, pre, ddof=1)[0, 1] / pre.var(ddof=1)
    theta = compute_theta(a, b)
    assert theta == pytest.approx(slope, rel=1e-9)

    adjusted_a, adjusted_b = regression_adjust(a, b)
    assert adjusted_a.mean == pytest.approx((post_a - theta * pre_a).mean(), rel=1e-9)
    assert adjusted_b.variance == pytest.approx((post_b - theta * pre_b).var(ddof=1), rel=1e-8)

    r_squared = np.corrcoef(post, pre)[0, 1] ** 2
    summary = cuped_result(a, b, "absolute")
    assert summary.variance_reduction == pytest.approx(r_squared, abs=0.01)
    assert 0.6 < summary.variance_reduction < 0.8
    adjusted = two_sided_ttest(a, b, difference_type="absolute")
    plain = two_sided_ttest(a.post_statistic, b.post_statistic, difference_type="absolute")
    assert adjusted.stddev < plain.stddev
    assert adjusted.ci_low < 0.3 < adjusted.ci_high


def test_constant_pre_period_falls_back_to_the_plain_test() -> None:
    post_a = SampleMeanStatistic(400, 4000.0, 90000.0)
    post_b = SampleMeanStatistic(410, 4300.0, 98000.0)
    zero = SampleMeanStatistic
    a = RegressionAdjustedStatistic(
        post_statistic=post_a,
        pre_statistic=zero(400, 0.0, 0.0),
        post_pre_sum_of_products=0.0,
        n=400,
    )
    b = RegressionAdjustedStatistic(
        post_statistic=post_b,
        pre_statistic=zero(410, 0.0, 0.0),
        post_pre_sum_of_products=0.0,
        n=410,
    )
    assert compute_theta(a, b) == 0.0
    assert regression_adjust(a, b) == (post_a, post_b)
    assert two_sided_ttest(a, b) == two_sided_ttest(post_a, post_b)
    summary = cuped_result(a, b)
    assert (summary.theta, summary.variance_reduction, summary.error) == (0.0, 0.0, None)


def test_degenerate_cuped_summaries() -> None:
    empty = RegressionAdjustedStatistic(
        post_statistic=ProportionStatistic(0, 0),
        pre_statistic=ProportionStatistic(0, 0),
        post_pre_sum_of_products=0.0,
        n=0,
    )
    some = RegressionAdjustedStatistic(
        post_statistic=ProportionStatistic(10, 3),
        pre_statistic=ProportionStatistic(10, 2),
        post_pre_sum_of_products=1.0,
        n=10,
    )
    none_converted = RegressionAdjustedStatistic(
        post_statistic=ProportionStatistic(10, 0),
        pre_statistic=ProportionStatistic(10, 2),
        post_pre_sum_of_products=0.0,
        n=10,
    )
    assert cuped_result(empty, some).error == NO_UNITS_IN_VARIATION
    assert cuped_result(none_converted, some).error == ZERO_NEGATIVE_BASELINE_VARIATION


def test_mixing_statistic_kinds_is_refused() -> None:
    a = RegressionAdjustedStatistic(
        post_statistic=ProportionStatistic(10, 3),
        pre_statistic=ProportionStatistic(10, 2),
        post_pre_sum_of_products=1.0,
        n=10,
    )
    b = RegressionAdjustedStatistic(
        post_statistic=SampleMeanStatistic(10, 3.0, 3.0),
        pre_statistic=ProportionStatistic(10, 2),
        post_pre_sum_of_products=1.0,
        n=10,
    )
    with pytest.raises(TypeError):
        compute_theta(a, b)
