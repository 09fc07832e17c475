"""A variant against control on one metric: every number of a readout row in one call."""

from __future__ import annotations

from metrics.stats.bayesian import bayesian_ab_test
from metrics.stats.cuped import cuped_result
from metrics.stats.results import FrequentistResult, VariantComparison
from metrics.stats.sequential import DEFAULT_TUNING_PARAMETER, sequential_two_sided_ttest
from metrics.stats.statistics import RegressionAdjustedStatistic, TestStatistic
from metrics.stats.ttest import two_sided_ttest


def _frequentist(
    control: TestStatistic,
    treatment: TestStatistic,
    difference_type: str,
    alpha: float,
    sequential: bool,
    tuning: float,
) -> FrequentistResult:
    if sequential:
        return sequential_two_sided_ttest(
            control,
            treatment,
            alpha=alpha,
            difference_type=difference_type,  # type: ignore[arg-type]
            sequential_tuning_parameter=tuning,
        )
    return two_sided_ttest(control, treatment, alpha=alpha, difference_type=difference_type)  # type: ignore[arg-type]


def compare_variant(
    control: TestStatistic,
    treatment: TestStatistic,
    *,
    alpha: float = 0.05,
    lower_is_better: bool = False,
    sequential: bool = False,
    sequential_tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
    nonnegative: bool = False,
) -> VariantComparison:
    """Run the relative and absolute frequentist tests and the Bayesian test on a pair.

    Args:
        control: Control's sufficient statistic.
        treatment: The variant's, of the same kind.
        alpha: Significance level of the tests and intervals.
        lower_is_better: True for guardrails such as `crashed`: chance to win is then the
            probability that the variant is lower.
        sequential: Use the always-valid sequential test instead of the fixed-horizon one.
        sequential_tuning_parameter: The sequential test's tuning parameter.
        nonnegative: The per-user values cannot be negative (a 0/1 outcome, a count), so
            the variant mean cannot fall more than 100% below control's: the relative
            interval's lower end is raised to -1. gbstats (0.8.0, `TwoSidedTTest`) returns
            the symmetric delta-method interval, which reaches below -100% when the lift's
            standard error is large; the test itself (`relative`, `p_value`) is unchanged,
            and since the point estimate is >= -1 the bounded interval excludes 0 exactly
            when the unbounded one does.

    Returns:
        The readout row. When the relative test cannot run, `relative_lift` is still the raw
        variant / control - 1 if the control mean is not 0, and the interval, p-value and
        chance to win are None.

    Examples:
        >>> from metrics.stats.statistics import ProportionStatistic
        >>> control, treatment = ProportionStatistic(20000, 2000), ProportionStatistic(20000, 2240)
        >>> row = compare_variant(control, treatment)
        >>> round(row.relative_lift, 4), round(row.p_value, 4), round(row.chance_to_win, 4)
        (0.12, 0.0002, 0.9999)
        >>> row.verdict("conversion")
        'treatment raises conversion by 12.0% (95% CI 5.6% to 18.4%), significant'
        >>> tiny = compare_variant(ProportionStatistic(10, 7), ProportionStatistic(10, 2),
        ...                        nonnegative=True)
        >>> round(tiny.relative.ci_low, 3), tiny.ci_low, tiny.relative_ci_bounded
        (-1.114, -1.0, True)
    """
    relative = _frequentist(control, treatment, "relative", alpha, sequential, sequential_tuning_parameter)
    absolute = _frequentist(control, treatment, "absolute", alpha, sequential, sequential_tuning_parameter)
    bayesian = bayesian_ab_test(control, treatment, inverse=lower_is_better, alpha=alpha)
    cuped = None
    if isinstance(control, RegressionAdjustedStatistic) and isinstance(treatment, RegressionAdjustedStatistic):
        cuped = cuped_result(control, treatment)

    control_mean = control.unadjusted_mean
    variant_mean = treatment.unadjusted_mean
    ok = relative.error is None
    if ok:
        relative_lift: float | None = relative.expected
    elif control_mean != 0:
        relative_lift = (treatment.mean - control.mean) / control_mean
    else:
        relative_lift = None
    absolute_ok = absolute.error is None
    ci_low = relative.ci_low if ok else None
    bounded = nonnegative and ci_low is not None and ci_low < -1.0
    if bounded:
        ci_low = -1.0
    return VariantComparison(
        control_users=control.n,
        variant_users=treatment.n,
        control_mean=control_mean,
        variant_mean=variant_mean,
        absolute_lift=absolute.expected if absolute_ok else treatment.mean - control.mean,
        absolute_ci_low=absolute.ci_low if absolute_ok else None,
        absolute_ci_high=absolute.ci_high if absolute_ok else None,
        relative_lift=relative_lift,
        ci_low=ci_low,
        ci_high=relative.ci_high if ok else None,
        p_value=relative.p_value if ok else None,
        chance_to_win=bayesian.chance_to_win if bayesian.error is None else None,
        error=relative.error,
        relative=relative,
        absolute=absolute,
        bayesian=bayesian,
        cuped=cuped,
        lower_is_better=lower_is_better,
        relative_ci_bounded=bounded,
    )
