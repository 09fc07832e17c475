"""Fixed-horizon frequentist test: gbstats's `TwoSidedTTest`.

The lift (relative by default) is divided by its delta-method standard error and referred to
Student's t on Welch-Satterthwaite degrees of freedom; the confidence interval is built from
the same t distribution, so the p-value and the interval always agree. With
`difference_type="absolute"` this is exactly Welch's unequal-variance t-test.
"""

from __future__ import annotations

import math

from metrics.stats.cuped import regression_adjust
from metrics.stats.distributions import student_t_ppf, student_t_sf
from metrics.stats.lift import pair_lift, pair_lift_variance, pair_welch_dof
from metrics.stats.results import (
    ZERO_NEGATIVE_BASELINE_VARIATION,
    ZERO_NEGATIVE_VARIANCE,
    DifferenceType,
    FrequentistMethod,
    FrequentistResult,
)
from metrics.stats.statistics import TestStatistic

_DIFFERENCE_TYPES = ("relative", "absolute")


def check_arguments(control: TestStatistic, treatment: TestStatistic, alpha: float, difference_type: str) -> None:
    """Reject calls that are programming errors rather than degenerate data.

    Raises:
        TypeError: If the two statistics are of different kinds.
        ValueError: If alpha is not in (0, 1) or the difference type is unknown.
    """
    if type(control) is not type(treatment):
        raise TypeError(f"cannot compare a {type(control).__name__} with a {type(treatment).__name__}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if difference_type not in _DIFFERENCE_TYPES:
        raise ValueError(f"difference_type must be one of {_DIFFERENCE_TYPES}, got {difference_type!r}")


def frequentist_error(control: TestStatistic, treatment: TestStatistic) -> str | None:
    """The error code gbstats's frequentist tests give a pair of statistics, if any.

    A zero control mean is refused whatever the difference type, as in gbstats; an empty
    variant has zero variance.

    Args:
        control: Control's statistic (after regression adjustment).
        treatment: Treatment's statistic.

    Returns:
        None when the test can run, else an error code.
    """
    if control.mean == 0 or control.unadjusted_mean == 0:
        return ZERO_NEGATIVE_BASELINE_VARIATION
    if control.has_zero_variance or treatment.has_zero_variance:
        return ZERO_NEGATIVE_VARIANCE
    return None


def default_frequentist_result(
    difference_type: DifferenceType, method: FrequentistMethod, alpha: float, error: str
) -> FrequentistResult:
    """The uninformative result of a test that could not run (gbstats `_default_output`)."""
    return FrequentistResult(
        difference_type=difference_type,
        method=method,
        expected=0.0,
        ci_low=0.0,
        ci_high=0.0,
        p_value=1.0,
        stddev=0.0,
        dof=0.0,
        alpha=alpha,
        error=error,
    )


def two_sided_ttest(
    control: TestStatistic,
    treatment: TestStatistic,
    *,
    alpha: float = 0.05,
    difference_type: DifferenceType = "relative",
    test_value: float = 0.0,
) -> FrequentistResult:
    """Two-sided t-test of the lift of treatment over control (gbstats `TwoSidedTTest`).

    Args:
        control: Control's sufficient statistic.
        treatment: Treatment's, of the same kind. CUPED statistics get the pooled theta.
        alpha: Significance level; the interval covers 1 - alpha.
        difference_type: `relative` ((t - c) / c, the default) or `absolute` (t - c).
        test_value: The lift under the null hypothesis.

    Returns:
        The lift, its (1 - alpha) confidence interval, the two-sided p-value, the standard
        error and the degrees of freedom, or a result carrying an error code when a variant
        has no variance or the control mean is zero.

    Examples:
        >>> from metrics.stats.statistics import ProportionStatistic
        >>> r = two_sided_ttest(ProportionStatistic(5012, 506), ProportionStatistic(4988, 564))
        >>> round(r.expected, 4), round(r.ci_low, 4), round(r.ci_high, 4), round(r.p_value, 4)
        (0.12, -0.0071, 0.247, 0.0642)
        >>> two_sided_ttest(ProportionStatistic(100, 0), ProportionStatistic(100, 3)).error
        'ZERO_NEGATIVE_BASELINE_VARIATION'
    """
    check_arguments(control, treatment, alpha, difference_type)
    control, treatment = regression_adjust(control, treatment)
    error = frequentist_error(control, treatment)
    if error is not None:
        return default_frequentist_result(difference_type, "t_test", alpha, error)
    expected = pair_lift(control, treatment, difference_type)
    stddev = math.sqrt(pair_lift_variance(control, treatment, difference_type))
    dof = pair_welch_dof(control, treatment)
    statistic = (expected - test_value) / stddev
    p_value = 2.0 * student_t_sf(abs(statistic), dof)
    width = student_t_ppf(1.0 - alpha / 2.0, dof) * stddev
    return FrequentistResult(
        difference_type=difference_type,
        method="t_test",
        expected=expected,
        ci_low=expected - width,
        ci_high=expected + width,
        p_value=min(p_value, 1.0),
        stddev=stddev,
        dof=dof,
        alpha=alpha,
    )
