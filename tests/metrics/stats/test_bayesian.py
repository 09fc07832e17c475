"""The Bayesian test against gbstats's EffectBayesianABTest and scipy's normal distribution."""

from __future__ import annotations

import math

import pytest
from gbstats_cases import assert_close, build, case_id, cases
from scipy import integrate, stats

from metrics.stats.bayesian import GaussianPrior, bayesian_ab_test, chance_to_win, risk
from metrics.stats.results import (
    NO_UNITS_IN_VARIATION,
    ZERO_NEGATIVE_BASELINE_VARIATION,
    ZERO_NEGATIVE_VARIANCE,
)
from metrics.stats.statistics import ProportionStatistic, SampleMeanStatistic
from metrics.stats.ttest import two_sided_ttest

BAYESIAN_CASES = cases("bayesian")


def _run(case: dict):
    config = dict(case["config"])
    prior = config.pop("prior")
    if prior is not None:
        config["prior"] = GaussianPrior(**prior)
    return bayesian_ab_test(build(case["control"]), build(case["treatment"]), **config)


@pytest.mark.parametrize("case", BAYESIAN_CASES, ids=[case_id(c) for c in BAYESIAN_CASES])
def test_bayesian_matches_gbstats(case: dict) -> None:
    result = _run(case)
    expected = case["gbstats"]
    if "exception" in expected:
        # For an absolute lift gbstats rescales the (relative) prior by the control mean even
        # when the prior is flat, and divides by zero when that mean is 0. A flat prior does
        # not need the rescaling, so the test runs; a proper one cannot be rescaled.
        if case["config"]["prior"] is not None:
            assert result.error == ZERO_NEGATIVE_BASELINE_VARIATION
        else:
            assert result.error is None
            assert result.expected == pytest.approx(0.3)  # the fixture's means: 0 and 0.3
            assert result.stddev == pytest.approx(math.sqrt(0.6 / 100 + 50 / 99 / 100))
        return
    assert result.error == expected["error_message"]
    assert_close(result.chance_to_win, expected["chance_to_win"], "chance_to_win")
    assert_close(result.expected, expected["expected"], "expected")
    assert_close(result.ci_low, expected["ci"][0], "ci_low")
    assert_close(result.ci_high, expected["ci"][1], "ci_high")
    assert_close(result.stddev, expected["uplift_stddev"], "stddev")
    assert_close(result.risk_control, expected["risk"][0], "risk_control")
    assert_close(result.risk_treatment, expected["risk"][1], "risk_treatment")
    assert result.difference_type == expected["risk_type"]


FLAT_CASES = [
    c for c in BAYESIAN_CASES if c["config"]["prior"] is None and c["gbstats"].get("error_message", "x") is None
]


@pytest.mark.parametrize("case", FLAT_CASES, ids=case_id)
def test_flat_prior_chance_to_win_is_a_normal_tail(case: dict) -> None:
    control, treatment = build(case["control"]), build(case["treatment"])
    config = case["config"]
    result = _run(case)
    # Under the flat prior the posterior is the frequentist lift with its delta-method error.
    frequentist = two_sided_ttest(control, treatment, difference_type=config["difference_type"])
    assert result.expected == frequentist.expected
    assert result.stddev == pytest.approx(frequentist.stddev, rel=1e-12)
    z = frequentist.expected / frequentist.stddev
    want = stats.norm.sf(z) if config["inverse"] else stats.norm.cdf(z)
    assert result.chance_to_win == pytest.approx(want, rel=1e-9, abs=1e-300)
    low, high = stats.norm.interval(0.95, loc=result.expected, scale=result.stddev)
    assert result.ci_low == pytest.approx(low, rel=1e-9, abs=1e-12)
    assert result.ci_high == pytest.approx(high, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("mean,sd", [(0.0, 1.0), (0.12, 0.065), (-0.3, 0.1), (2.0, 0.4), (0.01, 3.0)])
def test_risk_is_the_expected_loss(mean: float, sd: float) -> None:
    pdf = stats.norm(mean, sd).pdf
    lo, hi = mean - 12 * sd, mean + 12 * sd
    loss_control = integrate.quad(lambda x: max(x, 0.0) * pdf(x), lo, hi, points=[0.0], epsabs=1e-14)[0]
    loss_treatment = integrate.quad(lambda x: max(-x, 0.0) * pdf(x), lo, hi, points=[0.0], epsabs=1e-14)[0]
    ours = risk(mean, sd)
    assert ours[0] == pytest.approx(loss_control, rel=1e-7, abs=1e-13)
    assert ours[1] == pytest.approx(loss_treatment, rel=1e-7, abs=1e-13)
    # As gbstats states it: P(side) times the truncated-normal mean.
    p_negative = stats.norm.cdf(0, mean, sd)
    a, b = (0 - mean) / sd, math.inf
    mean_positive = stats.truncnorm.mean(a, b, loc=mean, scale=sd)
    assert ours[0] == pytest.approx((1 - p_negative) * mean_positive, rel=1e-9)


def test_inverse_flips_chance_to_win_and_swaps_risk() -> None:
    a, b = ProportionStatistic(5012, 50), ProportionStatistic(4988, 40)
    up, down = bayesian_ab_test(a, b), bayesian_ab_test(a, b, inverse=True)
    assert up.chance_to_win + down.chance_to_win == pytest.approx(1.0, abs=1e-15)
    assert (down.risk_control, down.risk_treatment) == (up.risk_treatment, up.risk_control)
    assert down.chance_to_win > 0.5  # fewer crashes in treatment: a win for a guardrail
    assert chance_to_win(0.1, 0.05, inverse=True) == pytest.approx(stats.norm.cdf(-2.0), rel=1e-12)


def test_proper_prior_shrinks_toward_its_mean() -> None:
    a, b = ProportionStatistic(200, 20), ProportionStatistic(200, 30)
    flat = bayesian_ab_test(a, b)
    shrunk = bayesian_ab_test(a, b, prior=GaussianPrior(0.0, 0.1**2, proper=True))
    assert 0 < shrunk.expected < flat.expected
    assert shrunk.stddev < flat.stddev
    precision = 1 / flat.stddev**2 + 1 / 0.1**2
    assert shrunk.expected == pytest.approx(flat.expected / flat.stddev**2 / precision, rel=1e-12)


@pytest.mark.parametrize(
    ("control", "treatment", "difference_type", "error"),
    [
        (
            ProportionStatistic(500, 0),
            ProportionStatistic(500, 7),
            "relative",
            ZERO_NEGATIVE_BASELINE_VARIATION,
        ),
        (
            SampleMeanStatistic(0, 0.0, 0.0),
            SampleMeanStatistic(10, 5.0, 9.0),
            "absolute",
            NO_UNITS_IN_VARIATION,
        ),
        (
            SampleMeanStatistic(10, 5.0, 9.0),
            SampleMeanStatistic(0, 0.0, 0.0),
            "relative",
            NO_UNITS_IN_VARIATION,
        ),
        (
            SampleMeanStatistic(10, 5.0, 9.0),
            SampleMeanStatistic(1, 3.0, 9.0),
            "relative",
            ZERO_NEGATIVE_VARIANCE,
        ),
        (
            ProportionStatistic(500, 0),
            ProportionStatistic(500, 7),
            "absolute",
            ZERO_NEGATIVE_VARIANCE,
        ),
    ],
)
def test_degenerate_inputs_return_an_error_result(control, treatment, difference_type, error) -> None:
    result = bayesian_ab_test(control, treatment, difference_type=difference_type)
    assert result.error == error
    assert result.chance_to_win == 0.5
    assert (result.expected, result.ci, result.risk) == (0.0, (0.0, 0.0), (0.0, 0.0))
