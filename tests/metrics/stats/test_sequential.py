"""The always-valid sequential test against gbstats's SequentialTwoSidedTTest."""

from __future__ import annotations

import math

import pytest
from gbstats_cases import assert_close, build, case_id, cases

from metrics.stats.results import ZERO_NEGATIVE_VARIANCE
from metrics.stats.sequential import sequential_rho, sequential_two_sided_ttest
from metrics.stats.statistics import ProportionStatistic, SampleMeanStatistic
from metrics.stats.ttest import two_sided_ttest

SEQUENTIAL_CASES = cases("sequential")


@pytest.mark.parametrize("case", SEQUENTIAL_CASES, ids=[case_id(c) for c in SEQUENTIAL_CASES])
def test_sequential_matches_gbstats(case: dict) -> None:
    result = sequential_two_sided_ttest(build(case["control"]), build(case["treatment"]), **case["config"])
    expected = case["gbstats"]
    assert result.error == expected["error_message"]
    assert result.method == "sequential"
    assert_close(result.expected, expected["expected"], "expected")
    assert_close(result.ci_low, expected["ci"][0], "ci_low")
    assert_close(result.ci_high, expected["ci"][1], "ci_high")
    assert_close(result.p_value, expected["p_value"], "p_value")
    assert_close(result.stddev, expected["uplift_stddev"], "stddev")


@pytest.mark.parametrize(
    "case",
    [c for c in SEQUENTIAL_CASES if c["gbstats"]["error_message"] is None],
    ids=case_id,
)
def test_always_valid_interval_is_wider_than_the_fixed_one(case: dict) -> None:
    config = case["config"]
    control, treatment = build(case["control"]), build(case["treatment"])
    sequential = sequential_two_sided_ttest(control, treatment, **config)
    fixed = two_sided_ttest(control, treatment, alpha=config["alpha"], difference_type=config["difference_type"])
    if control.n + treatment.n >= 30:  # t quantiles at a handful of units are wider still
        assert sequential.ci_low < fixed.ci_low and sequential.ci_high > fixed.ci_high
        assert sequential.p_value >= fixed.p_value


def test_published_gbstats_numbers() -> None:
    """gbstats's own unit tests (tests/frequentist/test_tests.py), rounded to 5 decimals."""
    a = SampleMeanStatistic(n=3000, sum=1396.87, sum_squares=52377.9767)
    b = SampleMeanStatistic(n=3461, sum=2422.7, sum_squares=134698.29)
    r = sequential_two_sided_ttest(a, b, sequential_tuning_parameter=1000)
    assert [round(x, 5) for x in (r.expected, r.ci_low, r.ci_high, r.stddev, r.p_value)] == [
        0.50336,
        -0.55844,
        1.56516,
        0.33341,
        1.0,
    ]
    p = sequential_two_sided_ttest(ProportionStatistic(n=3000, sum=1396), ProportionStatistic(n=3461, sum=2422))
    assert [round(x, 5) for x in (p.expected, p.ci_low, p.ci_high, p.stddev, p.p_value)] == [
        0.50386,
        0.40098,
        0.60675,
        0.03386,
        0.0,
    ]


def test_tuning_near_the_sample_size_gives_the_tightest_interval() -> None:
    # gbstats's test_sequential_test_tuning_as_expected.
    a = SampleMeanStatistic(n=3000, sum=1396.87, sum_squares=52377.9767)
    b = SampleMeanStatistic(n=3461, sum=2422.7, sum_squares=134698.29)
    below, near, above = (sequential_two_sided_ttest(a, b, sequential_tuning_parameter=t) for t in (10, 6461, 10000))
    assert below.ci_low < above.ci_low and below.ci_high > above.ci_high
    assert below.ci_low < near.ci_low and below.ci_high > near.ci_high
    assert above.ci_low < near.ci_low and above.ci_high > near.ci_high


def test_huge_evidence_gives_p_zero_without_overflow() -> None:
    r = sequential_two_sided_ttest(ProportionStatistic(10**7, 10**6), ProportionStatistic(10**7, 2 * 10**6))
    assert r.p_value == 0.0 and r.error is None


def test_rho() -> None:
    assert sequential_rho(0.05, 5000) == pytest.approx(
        math.sqrt((-2 * math.log(0.05) + math.log(-2 * math.log(0.05) + 1)) / 5000), rel=1e-15
    )


def test_degenerate_and_bad_inputs() -> None:
    r = sequential_two_sided_ttest(SampleMeanStatistic(10, 10.0, 10.0), SampleMeanStatistic(10, 12.0, 20.0))
    assert r.error == ZERO_NEGATIVE_VARIANCE and r.p_value == 1.0
    with pytest.raises(ValueError):
        sequential_two_sided_ttest(
            ProportionStatistic(10, 1), ProportionStatistic(10, 2), sequential_tuning_parameter=0
        )
