"""The lift of treatment over control and its variance, shared by every test.

These are gbstats's `frequentist_diff` and `frequentist_variance` (`frequentist/tests.py`):
the relative lift is (treatment - control) / control and its variance comes from the delta
method; the degrees of freedom are Welch-Satterthwaite's on the per-unit variances.
"""

from __future__ import annotations

from metrics.stats.results import DifferenceType
from metrics.stats.statistics import TestStatistic


def lift(
    control_mean: float,
    treatment_mean: float,
    difference_type: DifferenceType,
    control_unadjusted_mean: float | None = None,
) -> float:
    """Point estimate of the lift.

    Args:
        control_mean: Control mean (regression-adjusted for CUPED).
        treatment_mean: Treatment mean (regression-adjusted for CUPED).
        difference_type: `relative` or `absolute`.
        control_unadjusted_mean: Denominator of a relative lift; the control mean before
            adjustment (gbstats divides the adjusted difference by it). Defaults to
            `control_mean`.

    Returns:
        (treatment - control) / control, or treatment - control.

    Examples:
        >>> round(lift(0.101, 0.113, "relative"), 12)
        0.118811881188
        >>> round(lift(0.101, 0.113, "absolute"), 12)
        0.012
    """
    if not control_unadjusted_mean:
        control_unadjusted_mean = control_mean
    if difference_type == "relative":
        return (treatment_mean - control_mean) / control_unadjusted_mean
    return treatment_mean - control_mean


def lift_variance(
    control_variance: float,
    control_mean: float,
    control_n: int,
    treatment_variance: float,
    treatment_mean: float,
    treatment_n: int,
    difference_type: DifferenceType,
) -> float:
    """Variance of the lift estimate; for a relative lift, by the delta method.

    Args:
        control_variance: Per-unit variance in control.
        control_mean: Control mean (unadjusted, as gbstats uses it).
        control_n: Units in control.
        treatment_variance: Per-unit variance in treatment.
        treatment_mean: Treatment mean (unadjusted).
        treatment_n: Units in treatment.
        difference_type: `relative` or `absolute`.

    Returns:
        var_t / (m_c^2 n_t) + var_c m_t^2 / (m_c^4 n_c) for a relative lift,
        var_t / n_t + var_c / n_c for an absolute one.

    Examples:
        >>> round(lift_variance(1.0, 2.0, 100, 1.0, 2.0, 100, "absolute"), 12)
        0.02
        >>> round(lift_variance(1.0, 2.0, 100, 1.0, 2.0, 100, "relative"), 12)
        0.005
    """
    if difference_type == "relative":
        return treatment_variance / (control_mean**2 * treatment_n) + control_variance * (treatment_mean**2) / (
            control_mean**4 * control_n
        )
    return treatment_variance / treatment_n + control_variance / control_n


def welch_dof(control_variance: float, control_n: int, treatment_variance: float, treatment_n: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a difference of two means.

    Args:
        control_variance: Per-unit variance in control.
        control_n: Units in control (at least 2).
        treatment_variance: Per-unit variance in treatment.
        treatment_n: Units in treatment (at least 2).

    Returns:
        (v_t/n_t + v_c/n_c)^2 / (v_t^2 / (n_t^2 (n_t - 1)) + v_c^2 / (n_c^2 (n_c - 1))).

    Examples:
        >>> welch_dof(1.0, 11, 1.0, 11)
        20.0
    """
    numerator = (treatment_variance / treatment_n + control_variance / control_n) ** 2
    denominator = treatment_variance**2 / (treatment_n**2 * (treatment_n - 1)) + (control_variance**2) / (
        control_n**2 * (control_n - 1)
    )
    return numerator / denominator


def pair_lift(control: TestStatistic, treatment: TestStatistic, difference_type: DifferenceType) -> float:
    """`lift` of two statistics (adjusted means over the unadjusted control mean)."""
    return lift(control.mean, treatment.mean, difference_type, control.unadjusted_mean)


def pair_lift_variance(control: TestStatistic, treatment: TestStatistic, difference_type: DifferenceType) -> float:
    """`lift_variance` of two statistics."""
    return lift_variance(
        control.variance,
        control.unadjusted_mean,
        control.n,
        treatment.variance,
        treatment.unadjusted_mean,
        treatment.n,
        difference_type,
    )


def pair_welch_dof(control: TestStatistic, treatment: TestStatistic) -> float:
    """`welch_dof` of two statistics."""
    return welch_dof(control.variance, control.n, treatment.variance, treatment.n)
