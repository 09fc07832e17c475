"""Pure pieces of the scorecards: the two-proportion z-test against scipy, SLO statuses,
period arithmetic and quantiles (the mart SELECT builder: tests/metrics/sql/test_marts.py)."""

from __future__ import annotations

import datetime as dt
import doctest
import math

import pytest
from scipy import stats

from metrics.errors import InternalError, InvalidQuery, NotFound
from metrics.scorecards import common, launches, slo
from metrics.scorecards.common import check_choice, next_period, period_start, previous_period
from metrics.scorecards.launches import quantile
from metrics.scorecards.slo import Direction, Slo, Status, Thresholds
from metrics.stats import proportions
from metrics.stats.proportions import EMPTY_SAMPLE, NO_VARIANCE, two_proportion_z_test


@pytest.mark.parametrize("module", [common, launches, proportions, slo])
def test_docstring_examples(module):
    assert doctest.testmod(module).failed == 0


def scipy_two_proportion(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float]:
    """The textbook pooled z-test, with scipy's normal distribution for the p-value."""
    p1, p0 = x1 / n1, x0 / n0
    pooled = (x1 + x0) / (n1 + n0)
    z = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    return z, 2 * stats.norm.sf(abs(z))


@pytest.mark.parametrize(
    "x1,n1,x0,n0",
    [
        (32, 288, 0, 141),
        (9, 422, 1, 163),
        (49, 3222, 6, 1647),
        (5, 383, 7, 130),
        (1, 10, 9, 10),
        (500, 100000, 430, 100000),
        (3, 302, 1, 102),
    ],
)
def test_z_test_matches_scipy(x1, n1, x0, n0):
    result = two_proportion_z_test(x1, n1, x0, n0)
    z, p = scipy_two_proportion(x1, n1, x0, n0)
    assert result.z == pytest.approx(z, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert result.difference == pytest.approx(x1 / n1 - x0 / n0)


def test_z_test_matches_scipy_chi_square_on_the_2x2_table():
    # z^2 of the pooled test is Pearson's chi-square without continuity correction
    x1, n1, x0, n0 = 32, 288, 4, 141
    chi2, p, _, _ = stats.chi2_contingency([[x1, n1 - x1], [x0, n0 - x0]], correction=False)
    result = two_proportion_z_test(x1, n1, x0, n0)
    assert result.z**2 == pytest.approx(chi2, rel=1e-10)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_z_test_degenerate_inputs_return_a_result():
    assert two_proportion_z_test(0, 0, 3, 10).error == EMPTY_SAMPLE
    both_zero = two_proportion_z_test(0, 50, 0, 60)
    assert both_zero.error == NO_VARIANCE and both_zero.difference == 0 and both_zero.p_value is None


def test_slo_statuses_in_both_directions_and_per_slice():
    higher = Slo.from_meta(
        "crash_free_user_rate", {"slo": {"direction": "higher_is_better", "target": 0.99, "warn": 0.985}}
    )
    assert [higher.status(v, 7) for v in (0.999, 0.99, 0.985, 0.9849, None)] == [
        Status.OK,
        Status.OK,
        Status.WARN,
        Status.BREACH,
        Status.NO_DATA,
    ]
    lower = Slo.from_meta(
        "incidents",
        {
            "slo": {
                "direction": "lower_is_better",
                "target": 2,
                "warn": 3,
                "per_days": 7,
                "by_severity": {"sev1": {"target": 0, "warn": 0}},
            }
        },
    )
    assert lower.direction is Direction.LOWER_IS_BETTER
    assert [lower.status(v, 7) for v in (2, 3, 4)] == [Status.OK, Status.WARN, Status.BREACH]
    # a 31-day month allows 31/7 times the weekly count
    assert lower.thresholds(31) == Thresholds(2 * 31 / 7, 3 * 31 / 7)
    assert lower.status(8, 31) is Status.OK
    assert lower.status(0, 7, "severity", "sev1") is Status.OK
    assert lower.status(1, 7, "severity", "sev1") is Status.BREACH
    assert lower.status(1, 7, "severity", "sev4") is Status.OK  # no override: the default thresholds
    assert Slo.from_meta("arpu", {"owner": "x"}) is None


def test_malformed_slo_is_an_internal_error():
    with pytest.raises(InternalError, match="target"):
        Slo.from_meta("x", {"slo": {"direction": "higher_is_better", "warn": 1}})
    with pytest.raises(InternalError, match="warn must lie past target"):
        Slo.from_meta("x", {"slo": {"direction": "higher_is_better", "target": 0.9, "warn": 0.95}})
    with pytest.raises(InternalError):
        Slo.from_meta("x", {"slo": {"direction": "sideways", "target": 1, "warn": 2}})


def test_periods():
    assert period_start(dt.date(2026, 3, 1), "week") == dt.date(2026, 2, 23)  # a Sunday
    assert next_period(dt.date(2026, 1, 1), "month") == dt.date(2026, 2, 1)
    assert previous_period(dt.date(2026, 1, 1), "month") == dt.date(2025, 12, 1)
    assert previous_period(dt.date(2026, 3, 2), "week") == dt.date(2026, 2, 23)
    with pytest.raises(InvalidQuery, match="valid periods"):
        period_start(dt.date(2026, 1, 1), "fortnight")


def test_unknown_choices_name_the_nearest():
    with pytest.raises(InvalidQuery) as raised:
        check_choice("andriod", ["web", "ios", "android"], "platform")
    assert raised.value.details["suggestions"] == ["android"]
    with pytest.raises(NotFound):
        check_choice("lch_9", ["lch_001"], "launch", not_found=True)


def test_quantile_matches_scipy_linear_interpolation():
    values = [0.5, 3.25, 1.0, 9.0, 2.0, 2.0, 7.5]
    for q in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        assert quantile(values, q) == pytest.approx(float(stats.mstats.mquantiles(values, [q], alphap=1, betap=1)[0]))
    assert quantile([], 0.5) is None
