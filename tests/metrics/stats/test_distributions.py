"""The pure-Python distributions against scipy."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from metrics.stats import distributions as d

DFS = [1.0, 1.7, 2.0, 3.0, 4.5, 10.0, 29.3, 102.6, 999.0, 1001.0, 9968.25, 39998.2, 2e6, 1e12]
TS = [0.0, 1e-6, 0.1, 0.5, 1.0, 1.645, 1.96, 2.5, 3.3, 4.0, 6.0, 10.0, 40.0]
PS = [1e-10, 1e-4, 0.005, 0.025, 0.05, 0.2, 0.5, 0.8, 0.95, 0.975, 0.995, 0.9999]


def _rel(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / abs(theirs) if theirs else abs(ours)


@pytest.mark.parametrize("df", DFS)
def test_student_t_tails_match_scipy(df: float) -> None:
    for t in TS:
        for x in (t, -t):
            # scipy's own t.sf is off by ~1e-9 near 0 for df=1, so 1e-8 leaves room for that.
            assert _rel(d.student_t_sf(x, df), stats.t.sf(x, df)) < 1e-8, (x, df)
            assert _rel(d.student_t_cdf(x, df), stats.t.cdf(x, df)) < 1e-8, (x, df)
            assert _rel(d.student_t_pdf(x, df), stats.t.pdf(x, df)) < 1e-9, (x, df)


@pytest.mark.parametrize("df", DFS)
def test_student_t_quantiles_match_scipy(df: float) -> None:
    for p in PS:
        ours = d.student_t_ppf(p, df)
        assert _rel(ours, stats.t.ppf(p, df)) < 1e-9, (p, df)
        assert d.student_t_cdf(ours, df) == pytest.approx(p, rel=1e-9)


def test_student_t_tail_is_exact_where_it_is_known() -> None:
    # Cauchy (df = 1): P(T > t) = 1/2 - atan(t) / pi; near 0 this beats scipy's own value.
    for t in (1e-8, 0.3, 7.0):
        assert d.student_t_sf(t, 1.0) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-13)
    assert d.student_t_ppf(1e-12, 1.0) == pytest.approx(-1 / math.tan(math.pi * 1e-12), rel=1e-12)
    assert d.student_t_ppf(0.9, 2.0) == pytest.approx(0.8 / math.sqrt(2 * 0.9 * 0.1), rel=1e-14)


def test_student_t_approaches_normal() -> None:
    assert d.student_t_sf(1.96, math.inf) == d.normal_sf(1.96)
    assert d.student_t_ppf(0.975, math.inf) == d.normal_ppf(0.975)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 7, 12, 50, 300])
def test_chi2_sf_matches_scipy(df: int) -> None:
    for x in (0.0, 1e-4, 0.5, 1.0, 3.84, 10.0, 50.0, 200.0, 1000.0):
        assert _rel(d.chi2_sf(x, df), stats.chi2.sf(x, df)) < 1e-12, (x, df)


def test_normal_matches_scipy() -> None:
    for x in (-38.0, -8.0, -1.0, 0.0, 0.5, 2.0, 8.0, 38.0):
        assert _rel(d.normal_cdf(x), stats.norm.cdf(x)) < 1e-12
        assert _rel(d.normal_sf(x), stats.norm.sf(x)) < 1e-12
        assert _rel(d.normal_pdf(x), stats.norm.pdf(x)) < 1e-12
    for p in PS:
        assert _rel(d.normal_ppf(p), stats.norm.ppf(p)) < 1e-12


def test_regularized_beta_matches_scipy() -> None:
    from scipy import special

    for a, b in ((0.5, 0.5), (2.0, 3.0), (0.5, 500.0), (5000.0, 0.5), (30.0, 40.0)):
        for x in (1e-6, 0.01, 0.3, 0.5, 0.9, 0.999):
            assert _rel(d.regularized_beta(a, b, x), special.betainc(a, b, x)) < 1e-10, (a, b, x)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        d.student_t_ppf(1.0, 5.0)
    with pytest.raises(ValueError):
        d.student_t_ppf(0.5, 0.0)
    with pytest.raises(ValueError):
        d.normal_ppf(0.0)
    with pytest.raises(ValueError):
        d.chi2_sf(1.0, 0)
