"""The fixed-horizon t-test against gbstats's TwoSidedTTest and scipy's Welch test."""

from __future__ import annotations

import math

import pytest
from gbstats_cases import assert_close, build, case_id, cases
from scipy import stats

from metrics.stats.results import ZERO_NEGATIVE_BASELINE_VARIATION, ZERO_NEGATIVE_VARIANCE
from metrics.stats.statistics import ProportionStatistic, SampleMeanStatistic
from metrics.stats.ttest import two_sided_ttest

TTEST_CASES = cases("ttest")


@pytest.mark.parametrize("case", TTEST_CASES, ids=[case_id(c) for c in TTEST_CASES])
def test_ttest_matches_gbstats(case: dict) -> None:
    result = two_sided_ttest(build(case["control"]), build(case["treatment"]), **case["config"])
    expected = case["gbstats"]
    assert result.error == expected["error_message"]
    assert_close(result.expected, expected["expected"], "expected")
    assert_close(result.ci_low, expected["ci"][0], "ci_low")
    assert_close(result.ci_high, expected["ci"][1], "ci_high")
    assert_close(result.p_value, expected["p_value"], "p_value")
    assert_close(result.stddev, expected["uplift_stddev"], "stddev")
    if "dof" in expected:
        assert_close(result.dof, expected["dof"], "dof")


def _welch_inputs(stat) -> tuple[float, float, int]:
    # gbstats's per-unit variance: n - 1 for means, p(1 - p) for proportions; scipy takes a
    # standard deviation and uses it as given.
    return stat.mean, math.sqrt(stat.variance), stat.n


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in TTEST_CASES
        if c["config"]["difference_type"] == "absolute"
        and c["gbstats"]["error_message"] is None
        and c["control"]["kind"] in ("mean", "proportion")
    ],
    ids=case_id,
)
def test_absolute_test_is_welchs_t_test(case: dict) -> None:
    control, treatment = build(case["control"]), build(case["treatment"])
    result = two_sided_ttest(control, treatment, difference_type="absolute")
    mean_t, sd_t, n_t = _welch_inputs(treatment)
    mean_c, sd_c, n_c = _welch_inputs(control)
    welch = stats.ttest_ind_from_stats(mean_t, sd_t, n_t, mean_c, sd_c, n_c, equal_var=False)
    assert result.expected / result.stddev == pytest.approx(welch.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(welch.pvalue, rel=1e-9, abs=1e-300)
    # The interval is the Welch one, from scipy's t quantile on the same degrees of freedom.
    se = math.sqrt(sd_t**2 / n_t + sd_c**2 / n_c)
    dof = (sd_t**2 / n_t + sd_c**2 / n_c) ** 2 / ((sd_t**2 / n_t) ** 2 / (n_t - 1) + (sd_c**2 / n_c) ** 2 / (n_c - 1))
    half = stats.t.ppf(0.975, dof) * se
    assert result.ci_low == pytest.approx(mean_t - mean_c - half, rel=1e-9, abs=1e-12)
    assert result.ci_high == pytest.approx(mean_t - mean_c + half, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    "case",
    [c for c in TTEST_CASES if c["config"]["difference_type"] == "relative" and c["gbstats"]["error_message"] is None],
    ids=case_id,
)
def test_relative_test_is_a_t_test_on_the_delta_method_lift(case: dict) -> None:
    control, treatment = build(case["control"]), build(case["treatment"])
    alpha = case["config"]["alpha"]
    result = two_sided_ttest(control, treatment, alpha=alpha)
    if control.__class__.__name__ != "RegressionAdjustedStatistic":
        assert result.expected == pytest.approx(treatment.mean / control.mean - 1, rel=1e-12, abs=1e-15)
    delta_variance = treatment.variance / (control.mean**2 * treatment.n) + (
        control.variance * treatment.mean**2 / (control.mean**4 * control.n)
    )
    if control.__class__.__name__ != "RegressionAdjustedStatistic":
        assert result.stddev == pytest.approx(math.sqrt(delta_variance), rel=1e-12)
    t = result.expected / result.stddev
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), result.dof), rel=1e-9, abs=1e-300)
    half = stats.t.ppf(1 - alpha / 2, result.dof) * result.stddev
    assert result.ci_low == pytest.approx(result.expected - half, rel=1e-9, abs=1e-12)
    # The p-value and the interval tell the same story.
    assert (result.p_value < alpha) == (result.ci_low > 0 or result.ci_high < 0)


def test_published_gbstats_numbers() -> None:
    """gbstats's own unit tests (tests/frequentist/test_tests.py), rounded to 5 decimals."""
    a = SampleMeanStatistic(n=3407, sum=1396.87, sum_squares=52377.9767)
    b = SampleMeanStatistic(n=3461, sum=2422.7, sum_squares=134698.29)
    rel = two_sided_ttest(a, b)
    assert [round(x, 5) for x in (rel.expected, rel.ci_low, rel.ci_high, rel.stddev, rel.p_value)] == [
        0.70732,
        -0.03526,
        1.44989,
        0.37879,
        0.06191,
    ]
    absolute = two_sided_ttest(a, b, difference_type="absolute")
    assert [round(x, 5) for x in (absolute.expected, absolute.ci_low, absolute.ci_high)] == [
        0.29,
        0.04538,
        0.53462,
    ]
    assert [round(x, 5) for x in (absolute.stddev, absolute.p_value)] == [0.12478, 0.02016]
    binomial = two_sided_ttest(ProportionStatistic(n=28, sum=14), ProportionStatistic(n=30, sum=16))
    assert [round(x, 5) for x in (binomial.expected, binomial.ci_low, binomial.ci_high)] == [
        0.06667,
        -0.47767,
        0.61101,
    ]
    assert [round(x, 5) for x in (binomial.stddev, binomial.p_value)] == [0.2717, 0.80707]


def test_alpha_sets_the_interval_not_the_p_value() -> None:
    a, b = ProportionStatistic(5012, 506), ProportionStatistic(4988, 564)
    r95, r90 = two_sided_ttest(a, b), two_sided_ttest(a, b, alpha=0.10)
    assert r95.p_value == r90.p_value
    assert r90.ci_low > r95.ci_low and r90.ci_high < r95.ci_high
    assert r90.significant and not r95.significant


@pytest.mark.parametrize(
    ("control", "treatment", "error"),
    [
        (
            SampleMeanStatistic(100, 0.0, 50.0),
            SampleMeanStatistic(100, 30.0, 60.0),
            ZERO_NEGATIVE_BASELINE_VARIATION,
        ),
        (
            SampleMeanStatistic(0, 0.0, 0.0),
            SampleMeanStatistic(100, 30.0, 60.0),
            ZERO_NEGATIVE_BASELINE_VARIATION,
        ),
        (
            SampleMeanStatistic(100, 30.0, 60.0),
            SampleMeanStatistic(0, 0.0, 0.0),
            ZERO_NEGATIVE_VARIANCE,
        ),
        (
            SampleMeanStatistic(100, 30.0, 60.0),
            SampleMeanStatistic(1, 4.0, 16.0),
            ZERO_NEGATIVE_VARIANCE,
        ),
        (
            SampleMeanStatistic(100, 500.0, 2500.0),
            SampleMeanStatistic(100, 30.0, 60.0),
            ZERO_NEGATIVE_VARIANCE,
        ),
        (
            ProportionStatistic(500, 0),
            ProportionStatistic(500, 7),
            ZERO_NEGATIVE_BASELINE_VARIATION,
        ),
        (ProportionStatistic(50, 40), ProportionStatistic(50, 50), ZERO_NEGATIVE_VARIANCE),
    ],
)
def test_degenerate_inputs_return_an_error_result(control, treatment, error) -> None:
    for difference_type in ("relative", "absolute"):
        result = two_sided_ttest(control, treatment, difference_type=difference_type)
        assert result.error == error
        assert (result.expected, result.ci, result.p_value, result.stddev) == (
            0.0,
            (0.0, 0.0),
            1.0,
            0.0,
        )
        assert not result.significant


def test_programming_errors_raise() -> None:
    with pytest.raises(TypeError):
        two_sided_ttest(ProportionStatistic(10, 1), SampleMeanStatistic(10, 1.0, 1.0))
    with pytest.raises(ValueError):
        two_sided_ttest(ProportionStatistic(10, 1), ProportionStatistic(10, 2), alpha=1.5)
    with pytest.raises(ValueError):
        two_sided_ttest(ProportionStatistic(10, 1), ProportionStatistic(10, 2), difference_type="scaled")  # type: ignore[arg-type]
