"""CUPED: regression adjustment on the pre-period value of the same metric.

As in gbstats (`models/statistics.py` `compute_theta`, `models/tests.py` `BaseABTest`), one
coefficient theta is fitted on both variants pooled: the slope of the post-period metric on
the pre-period metric, cov(post, pre) / var(pre). Each variant's mean becomes
post mean - theta * pre mean, whose variance is smaller by the share of variance the
pre-period explains, while the expected lift is unchanged (assignment is random, so the
pre-period means agree in expectation). When either pooled variance is zero theta is 0 and the
tests fall back to the plain post-period statistics.
"""

from __future__ import annotations

from metrics.stats.lift import pair_lift_variance
from metrics.stats.results import (
    NO_UNITS_IN_VARIATION,
    ZERO_NEGATIVE_BASELINE_VARIATION,
    ZERO_NEGATIVE_VARIANCE,
    CupedResult,
    DifferenceType,
)
from metrics.stats.statistics import (
    BaseStatistic,
    ProportionStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    TestStatistic,
)


def create_joint_statistic(a: BaseStatistic, b: BaseStatistic, n: int) -> BaseStatistic:
    """Pool two statistics of the same kind over `n` units (gbstats's helper of that name).

    Args:
        a: One variant's statistic.
        b: The other's, of the same kind.
        n: Units in both (the regression-adjusted statistics' n, as gbstats takes it).

    Returns:
        The pooled statistic.

    Raises:
        TypeError: If the statistics are of different kinds.

    Examples:
        >>> create_joint_statistic(ProportionStatistic(10, 3), ProportionStatistic(10, 5), 20)
        ProportionStatistic(n=20, sum=8.0)
    """
    if isinstance(a, ProportionStatistic) and isinstance(b, ProportionStatistic):
        return ProportionStatistic(n=n, sum=a.sum + b.sum)
    if isinstance(a, SampleMeanStatistic) and isinstance(b, SampleMeanStatistic):
        return SampleMeanStatistic(n=n, sum=a.sum + b.sum, sum_squares=a.sum_squares + b.sum_squares)
    raise TypeError("a metric's statistics must be of the same kind in every variant")


def compute_theta(a: RegressionAdjustedStatistic, b: RegressionAdjustedStatistic) -> float:
    """The pooled CUPED coefficient cov(post, pre) / var(pre) over both variants.

    Args:
        a: Control's regression-adjusted statistic.
        b: Treatment's.

    Returns:
        theta, or 0 when the pooled pre- or post-period variance is zero.

    Examples:
        >>> a = RegressionAdjustedStatistic(
        ...     post_statistic=SampleMeanStatistic(2, 3.0, 5.0),  # post 1, 2
        ...     pre_statistic=SampleMeanStatistic(2, 1.0, 1.0),  # pre 0, 1
        ...     post_pre_sum_of_products=2.0, n=2)
        >>> b = RegressionAdjustedStatistic(
        ...     post_statistic=SampleMeanStatistic(2, 7.0, 25.0),  # post 3, 4
        ...     pre_statistic=SampleMeanStatistic(2, 5.0, 13.0),  # pre 2, 3
        ...     post_pre_sum_of_products=18.0, n=2)
        >>> compute_theta(a, b)  # post = pre + 1 exactly
        1.0
    """
    n = a.n + b.n
    joint_post = create_joint_statistic(a.post_statistic, b.post_statistic, n)
    joint_pre = create_joint_statistic(a.pre_statistic, b.pre_statistic, n)
    if joint_pre.variance == 0 or joint_post.variance == 0:
        return 0.0
    joint = RegressionAdjustedStatistic(
        post_statistic=joint_post,
        pre_statistic=joint_pre,
        post_pre_sum_of_products=a.post_pre_sum_of_products + b.post_pre_sum_of_products,
        n=n,
    )
    return joint.covariance / joint.pre_statistic.variance


def regression_adjust(control: TestStatistic, treatment: TestStatistic) -> tuple[TestStatistic, TestStatistic]:
    """Set the pooled theta on a pair of CUPED statistics, as gbstats's `BaseABTest` does.

    Other statistics pass through unchanged. When theta is 0 the pair falls back to the
    post-period statistics.

    Args:
        control: Control's statistic.
        treatment: Treatment's statistic.

    Returns:
        The pair the tests should use.
    """
    if isinstance(control, RegressionAdjustedStatistic) and isinstance(treatment, RegressionAdjustedStatistic):
        theta = compute_theta(control, treatment)
        if theta == 0:
            return control.post_statistic, treatment.post_statistic
        return control.with_theta(theta), treatment.with_theta(theta)
    return control, treatment


def cuped_result(
    control: RegressionAdjustedStatistic,
    treatment: RegressionAdjustedStatistic,
    difference_type: DifferenceType = "relative",
) -> CupedResult:
    """How much CUPED shrank the variance of the lift estimate.

    Args:
        control: Control's regression-adjusted statistic.
        treatment: Treatment's.
        difference_type: The lift whose variance is compared.

    Returns:
        theta and the variance reduction 1 - adjusted / unadjusted variance of the lift.
        With theta 0 the reduction is 0. A variant without units, a zero control mean for
        a relative lift, or an unadjusted lift without variance give a result carrying
        the matching error code.
    """
    theta = compute_theta(control, treatment)
    post_c, post_t = control.post_statistic, treatment.post_statistic
    if post_c.n == 0 or post_t.n == 0:
        return CupedResult(theta, 0.0, 0.0, 0.0, NO_UNITS_IN_VARIATION)
    if post_c.mean == 0 and difference_type == "relative":
        return CupedResult(theta, 0.0, 0.0, 0.0, ZERO_NEGATIVE_BASELINE_VARIATION)
    unadjusted = pair_lift_variance(post_c, post_t, difference_type)
    if not unadjusted > 0:
        return CupedResult(theta, 0.0, 0.0, 0.0, ZERO_NEGATIVE_VARIANCE)
    adjusted_c, adjusted_t = regression_adjust(control, treatment)
    adjusted = pair_lift_variance(adjusted_c, adjusted_t, difference_type)
    return CupedResult(
        theta=theta,
        variance_reduction=1.0 - adjusted / unadjusted,
        unadjusted_stddev=unadjusted**0.5,
        adjusted_stddev=max(adjusted, 0.0) ** 0.5,
    )
