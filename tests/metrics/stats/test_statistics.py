"""Sufficient statistics: gbstats's definitions, merging, and input checking."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from gbstats_cases import assert_close, build, cases

from metrics.stats.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)

STATISTIC_CASES = cases("statistics")


@pytest.mark.parametrize("case", STATISTIC_CASES, ids=[c["name"] for c in STATISTIC_CASES])
def test_statistic_matches_gbstats(case: dict) -> None:
    stat = build(case["statistic"])
    expected = case["gbstats"]
    for field in ("mean", "variance", "stddev", "unadjusted_mean", "covariance"):
        if field in expected:
            assert_close(getattr(stat, field), expected[field], field)
    assert stat.has_zero_variance is expected["has_zero_variance"]


def _sample(values: np.ndarray) -> SampleMeanStatistic:
    return SampleMeanStatistic(len(values), float(values.sum()), float((values**2).sum()))


def test_sample_mean_agrees_with_numpy() -> None:
    values = np.random.default_rng(1).gamma(2.0, 3.0, 501)
    stat = _sample(values)
    assert stat.mean == pytest.approx(values.mean(), rel=1e-12)
    assert stat.variance == pytest.approx(values.var(ddof=1), rel=1e-10)
    assert stat.stddev == pytest.approx(values.std(ddof=1), rel=1e-10)


def test_ratio_delta_method_agrees_with_numpy() -> None:
    rng = np.random.default_rng(2)
    d = rng.poisson(2.0, 2000).astype(float) + 1
    m = d * rng.gamma(3.0, 4.0, 2000)
    ratio = RatioStatistic(
        m_statistic=_sample(m),
        d_statistic=_sample(d),
        m_d_sum_of_products=float((m * d).sum()),
        n=2000,
    )
    cov = np.cov(m, d, ddof=1)
    mu_m, mu_d = m.mean(), d.mean()
    gradient = np.array([1 / mu_d, -mu_m / mu_d**2])
    assert ratio.mean == pytest.approx(m.sum() / d.sum(), rel=1e-12)
    assert ratio.covariance == pytest.approx(cov[0, 1], rel=1e-9)
    assert ratio.variance == pytest.approx(gradient @ cov @ gradient, rel=1e-9)


def test_regression_adjusted_agrees_with_numpy() -> None:
    rng = np.random.default_rng(3)
    pre = rng.normal(10, 3, 1000)
    post = 0.8 * pre + rng.normal(2, 1, 1000)
    ra = RegressionAdjustedStatistic(
        post_statistic=_sample(post),
        pre_statistic=_sample(pre),
        post_pre_sum_of_products=float((post * pre).sum()),
        n=1000,
        theta=0.8,
    )
    adjusted = post - 0.8 * pre
    assert ra.mean == pytest.approx(adjusted.mean(), rel=1e-10)
    assert ra.unadjusted_mean == pytest.approx(post.mean(), rel=1e-12)
    assert ra.variance == pytest.approx(adjusted.var(ddof=1), rel=1e-8)
    assert ra.with_theta(0.0).variance == pytest.approx(post.var(ddof=1), rel=1e-10)


def test_adding_statistics_pools_the_units() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(5, 2, 300), rng.normal(6, 1, 200)
    merged, pooled = _sample(a) + _sample(b), _sample(np.concatenate([a, b]))
    assert merged.n == pooled.n == 500
    assert merged.mean == pytest.approx(pooled.mean, rel=1e-12)
    assert merged.variance == pytest.approx(pooled.variance, rel=1e-10)
    assert ProportionStatistic(10, 3) + ProportionStatistic(20, 4) == ProportionStatistic(30, 7)

    ratio = RatioStatistic(
        m_statistic=SampleMeanStatistic(3, 6.0, 14.0),
        d_statistic=SampleMeanStatistic(3, 3.0, 5.0),
        m_d_sum_of_products=8.0,
        n=3,
    )
    doubled = ratio + ratio
    assert doubled.n == 6 and doubled.m_d_sum_of_products == 16.0
    assert doubled.m_statistic == SampleMeanStatistic(6, 12.0, 28.0)
    assert doubled.mean == ratio.mean

    ra = RegressionAdjustedStatistic(
        post_statistic=ProportionStatistic(10, 4),
        pre_statistic=ProportionStatistic(10, 2),
        post_pre_sum_of_products=2.0,
        n=10,
        theta=0.5,
    )
    assert (ra + ra).post_statistic == ProportionStatistic(20, 8)
    assert (ra + ra).theta == 0.5
    assert (ra + ra.with_theta(0.7)).theta == 0.0


def test_adding_different_kinds_is_refused() -> None:
    with pytest.raises(TypeError):
        SampleMeanStatistic(1, 1.0, 1.0) + ProportionStatistic(1, 1)  # type: ignore[operator]
    ratio_means = RatioStatistic(
        m_statistic=SampleMeanStatistic(2, 1.0, 1.0),
        d_statistic=SampleMeanStatistic(2, 1.0, 1.0),
        m_d_sum_of_products=1.0,
        n=2,
    )
    ratio_proportions = RatioStatistic(
        m_statistic=ProportionStatistic(2, 1),
        d_statistic=SampleMeanStatistic(2, 1.0, 1.0),
        m_d_sum_of_products=1.0,
        n=2,
    )
    with pytest.raises(TypeError):
        ratio_means + ratio_proportions


def test_statistics_are_frozen() -> None:
    stat = SampleMeanStatistic(2, 3.0, 5.0)
    with pytest.raises(AttributeError):
        stat.n = 3  # type: ignore[misc]


def test_sql_numbers_are_accepted() -> None:
    # DuckDB returns DECIMAL sums as Decimal and HUGEINT counts as int; numpy types also work.
    stat = SampleMeanStatistic(np.int64(4), Decimal("10.5"), Decimal("30.25"))
    assert stat.n == 4 and isinstance(stat.n, int)
    assert stat.sum == 10.5 and isinstance(stat.sum, float)
    assert ProportionStatistic(10.0, np.float32(3)).n == 10


@pytest.mark.parametrize(
    "make",
    [
        lambda: SampleMeanStatistic(-1, 0.0, 0.0),
        lambda: SampleMeanStatistic(2.5, 1.0, 1.0),
        lambda: SampleMeanStatistic(2, float("nan"), 1.0),
        lambda: ProportionStatistic(5, float("inf")),
        lambda: ProportionStatistic("ten", 1),
    ],
)
def test_invalid_inputs_are_refused(make) -> None:
    with pytest.raises((TypeError, ValueError)):
        make()


def test_degenerate_statistics_have_zero_variance() -> None:
    assert SampleMeanStatistic(0, 0.0, 0.0).mean == 0
    assert SampleMeanStatistic(1, 4.0, 16.0).has_zero_variance
    assert ProportionStatistic(10, 10).has_zero_variance
    assert ProportionStatistic(0, 0).has_zero_variance
    zero_denominator = RatioStatistic(
        m_statistic=SampleMeanStatistic(5, 3.0, 3.0),
        d_statistic=SampleMeanStatistic(5, 0.0, 0.0),
        m_d_sum_of_products=0.0,
        n=5,
    )
    assert zero_denominator.mean == 0 and zero_denominator.has_zero_variance
