"""Sequential testing: gbstats's `SequentialTwoSidedTTest`.

Always-valid confidence intervals and p-values (Waudby-Smith et al. 2023,
https://arxiv.org/abs/2103.06476, eqs. 9, 155 and 161, as gbstats implements them): the
readout can be looked at every day without inflating the false-positive rate, at the cost of
wider intervals. The tuning parameter is the total sample size at which the interval is
tightest; gbstats's default is 5000.
"""

from __future__ import annotations

import math

from metrics.stats.cuped import regression_adjust
from metrics.stats.lift import pair_lift, pair_lift_variance, pair_welch_dof
from metrics.stats.results import DifferenceType, FrequentistResult
from metrics.stats.statistics import TestStatistic
from metrics.stats.ttest import check_arguments, default_frequentist_result, frequentist_error

DEFAULT_TUNING_PARAMETER = 5000.0


def sequential_rho(alpha: float, sequential_tuning_parameter: float) -> float:
    """The mixing parameter rho of the normal-mixture boundary (eq. 161).

    Args:
        alpha: Significance level.
        sequential_tuning_parameter: Total units at which the boundary is tightest.

    Returns:
        rho = sqrt((-2 log alpha + log(-2 log alpha + 1)) / tuning parameter).

    Examples:
        >>> round(sequential_rho(0.05, 5000), 12)
        0.039840066771
    """
    minus_two_log_alpha = -2.0 * math.log(alpha)
    return math.sqrt((minus_two_log_alpha + math.log(minus_two_log_alpha + 1.0)) / sequential_tuning_parameter)


def sequential_two_sided_ttest(
    control: TestStatistic,
    treatment: TestStatistic,
    *,
    alpha: float = 0.05,
    difference_type: DifferenceType = "relative",
    sequential_tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
    test_value: float = 0.0,
) -> FrequentistResult:
    """Always-valid two-sided test of the lift (gbstats `SequentialTwoSidedTTest`).

    Args:
        control: Control's sufficient statistic.
        treatment: Treatment's, of the same kind. CUPED statistics get the pooled theta.
        alpha: Significance level; the interval covers 1 - alpha at every look.
        difference_type: `relative` (the default) or `absolute`.
        sequential_tuning_parameter: Total units at which the interval is tightest.
        test_value: The lift under the null hypothesis.

    Returns:
        The lift, its always-valid interval and p-value (`method="sequential"`), or a
        result carrying an error code for degenerate data.

    Examples:
        >>> from metrics.stats.statistics import ProportionStatistic
        >>> r = sequential_two_sided_ttest(
        ...     ProportionStatistic(5012, 506), ProportionStatistic(4988, 564))
        >>> round(r.ci_low, 4), round(r.ci_high, 4), round(r.p_value, 4)
        (-0.0784, 0.3184, 0.8195)
    """
    check_arguments(control, treatment, alpha, difference_type)
    if not sequential_tuning_parameter > 0:
        raise ValueError(f"sequential_tuning_parameter must be positive, got {sequential_tuning_parameter}")
    control, treatment = regression_adjust(control, treatment)
    error = frequentist_error(control, treatment)
    if error is not None:
        return default_frequentist_result(difference_type, "sequential", alpha, error)
    expected = pair_lift(control, treatment, difference_type)
    variance = pair_lift_variance(control, treatment, difference_type)
    total = control.n + treatment.n
    rho = sequential_rho(alpha, sequential_tuning_parameter)
    n_rho2_plus_1 = total * rho**2 + 1.0
    # eq. 9: half-width of the always-valid interval, with s^2 = variance * N.
    width = math.sqrt(variance * total) * math.sqrt(
        2.0 * n_rho2_plus_1 * math.log(math.sqrt(n_rho2_plus_1) / alpha) / (total * rho) ** 2
    )
    # eq. 155: p = min(1, 1 / e-value); the e-value is handled in logs so it cannot overflow.
    st2 = (expected - test_value) ** 2 * total / variance
    log_evalue = rho**2 * st2 / (2.0 * n_rho2_plus_1) - 0.5 * math.log(n_rho2_plus_1)
    p_value = math.exp(-log_evalue) if log_evalue > 0 else 1.0
    return FrequentistResult(
        difference_type=difference_type,
        method="sequential",
        expected=expected,
        ci_low=expected - width,
        ci_high=expected + width,
        p_value=p_value,
        stddev=math.sqrt(variance),
        dof=pair_welch_dof(control, treatment),
        alpha=alpha,
    )
