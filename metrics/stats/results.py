"""Result types of the experiment statistics, and the error codes degenerate inputs produce.

A test never raises on degenerate data (no units, no variance, a zero baseline): it returns
its result with `error` set to one of the codes below and uninformative numbers in place
(lift 0, interval (0, 0), p-value 1, chance to win 0.5), as gbstats's `_default_output()`
does. The codes are gbstats's own message strings (`gbstats/messages.py`), so a readout can
be compared with GrowthBook's field for field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from metrics.stats.verdict import verdict as _verdict

# Error codes (gbstats 0.8.0 `messages.py` values).
NO_UNITS_IN_VARIATION = "NO_UNITS_IN_VARIATION"
"""A variant has no units at all."""
ZERO_NEGATIVE_VARIANCE = "ZERO_NEGATIVE_VARIANCE"
"""A variant's variance is zero (every unit alike, or fewer than two units)."""
ZERO_NEGATIVE_BASELINE_VARIATION = "ZERO_NEGATIVE_BASELINE_VARIATION"
"""The control mean is zero, so a relative lift is undefined."""
TOO_FEW_VARIANTS = "TOO_FEW_VARIANTS"
"""An SRM check needs at least two variants (northstar's own code; gbstats has none)."""

ErrorCode = Literal[
    "NO_UNITS_IN_VARIATION",
    "ZERO_NEGATIVE_VARIANCE",
    "ZERO_NEGATIVE_BASELINE_VARIATION",
    "TOO_FEW_VARIANTS",
]

DifferenceType = Literal["relative", "absolute"]
"""`relative`: (treatment - control) / control; `absolute`: treatment - control."""

FrequentistMethod = Literal["t_test", "sequential"]


@dataclass(frozen=True)
class FrequentistResult:
    """A two-sided frequentist test of treatment against control.

    Attributes:
        difference_type: Whether the lift is relative or absolute.
        method: `t_test` (fixed horizon) or `sequential` (always-valid).
        expected: Point estimate of the lift.
        ci_low: Lower bound of the confidence interval on the lift.
        ci_high: Upper bound of the confidence interval on the lift.
        p_value: Two-sided p-value of the same test, so `p_value < alpha` exactly when the
            interval excludes 0 for the t-test.
        stddev: Standard error of the lift (gbstats `uplift.stddev`).
        dof: Welch-Satterthwaite degrees of freedom (the sequential test reports them but
            does not use them).
        alpha: The significance level the interval was built for.
        error: None, or the error code when the test could not run.
    """

    difference_type: DifferenceType
    method: FrequentistMethod
    expected: float
    ci_low: float
    ci_high: float
    p_value: float
    stddev: float
    dof: float
    alpha: float
    error: str | None = None

    @property
    def ci(self) -> tuple[float, float]:
        """The confidence interval as a pair."""
        return (self.ci_low, self.ci_high)

    @property
    def significant(self) -> bool:
        """True when the test ran and its p-value is below alpha."""
        return self.error is None and self.p_value < self.alpha


@dataclass(frozen=True)
class BayesianResult:
    """gbstats's effect test: a normal posterior on the lift.

    Attributes:
        difference_type: Whether the lift is relative or absolute.
        expected: Posterior mean of the lift (the observed lift under a flat prior).
        ci_low: Lower bound of the (1 - alpha) credible interval.
        ci_high: Upper bound of the credible interval.
        stddev: Posterior standard deviation of the lift.
        chance_to_win: Posterior probability that treatment is better: P(lift > 0), or
            P(lift < 0) when lower is better.
        risk_control: Expected loss of shipping control, E[max(better-direction lift, 0)].
        risk_treatment: Expected loss of shipping treatment.
        alpha: The level the credible interval was built for.
        error: None, or the error code when the test could not run.
    """

    difference_type: DifferenceType
    expected: float
    ci_low: float
    ci_high: float
    stddev: float
    chance_to_win: float
    risk_control: float
    risk_treatment: float
    alpha: float
    error: str | None = None

    @property
    def ci(self) -> tuple[float, float]:
        """The credible interval as a pair."""
        return (self.ci_low, self.ci_high)

    @property
    def risk(self) -> tuple[float, float]:
        """(risk of control, risk of treatment), gbstats's `risk` list."""
        return (self.risk_control, self.risk_treatment)


@dataclass(frozen=True)
class SrmResult:
    """Sample ratio mismatch: observed units per variant against the expected split.

    Attributes:
        p_value: Chi-square goodness-of-fit p-value (1 when it cannot be computed).
        chi_square: The chi-square statistic.
        dof: Degrees of freedom (variants - 1).
        threshold: p-values below this flag a mismatch (GrowthBook's default is 0.001).
        error: None, or the error code when the check could not run.
    """

    p_value: float
    chi_square: float
    dof: int
    threshold: float
    error: str | None = None

    @property
    def mismatch(self) -> bool:
        """True when the split differs from the expected one beyond the threshold."""
        return self.error is None and self.p_value < self.threshold


@dataclass(frozen=True)
class CupedResult:
    """What regression adjustment on the pre-period value bought.

    Attributes:
        theta: The pooled adjustment coefficient (0 when the adjustment is not used).
        variance_reduction: 1 - adjusted / unadjusted variance of the lift estimate, for the
            difference type asked for (0 when theta is 0).
        unadjusted_stddev: Standard error of the lift without adjustment.
        adjusted_stddev: Standard error of the lift with adjustment.
        error: None, or the error code when the unadjusted lift has no variance.
    """

    theta: float
    variance_reduction: float
    unadjusted_stddev: float
    adjusted_stddev: float
    error: str | None = None


@dataclass(frozen=True)
class VariantComparison:
    """One row of an experiment readout: a variant against control on one metric.

    The flat fields are those of a `results` entry of the readout in `spec/http-api.md`;
    the full test results ride along. Numbers a degenerate test cannot give are None.

    Attributes:
        control_users: Units in control.
        variant_users: Units in the variant.
        control_mean: Control mean (before any CUPED adjustment).
        variant_mean: Variant mean (before any CUPED adjustment).
        absolute_lift: Variant - control (CUPED-adjusted when the statistics are).
        absolute_ci_low: Lower bound of the absolute lift's confidence interval.
        absolute_ci_high: Upper bound of the absolute lift's confidence interval.
        relative_lift: Variant / control - 1 (CUPED-adjusted when the statistics are).
        ci_low: Lower bound of the relative lift's confidence interval.
        ci_high: Upper bound of the relative lift's confidence interval.
        p_value: Two-sided p-value of the relative-lift test.
        chance_to_win: Bayesian probability that the variant is better (lower, for a
            lower-is-better metric).
        error: The relative test's error code, if it could not run.
        relative: The relative-lift frequentist test.
        absolute: The absolute-lift frequentist test.
        bayesian: The Bayesian test of the relative lift.
        cuped: What CUPED bought, for regression-adjusted statistics.
        lower_is_better: Whether a drop is the good direction.
        relative_ci_bounded: Whether `ci_low` was raised to -1 (-100%): the per-user values
            cannot be negative, so no relative change below -100% is possible, while the
            delta-method interval (`relative.ci_low`, gbstats's number) can reach below it.
    """

    control_users: int
    variant_users: int
    control_mean: float
    variant_mean: float
    absolute_lift: float | None
    absolute_ci_low: float | None
    absolute_ci_high: float | None
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_win: float | None
    error: str | None
    relative: FrequentistResult
    absolute: FrequentistResult
    bayesian: BayesianResult
    cuped: CupedResult | None
    lower_is_better: bool
    relative_ci_bounded: bool = False

    @property
    def absolute_interval(self) -> tuple[float, float, float] | None:
        """(lift, ci_low, ci_high) of the absolute test, when it ran."""
        if self.absolute_lift is None or self.absolute_ci_low is None or self.absolute_ci_high is None:
            return None
        return (self.absolute_lift, self.absolute_ci_low, self.absolute_ci_high)

    @property
    def tests_disagree(self) -> bool:
        """True when the relative and the absolute test both ran and only one of their
        intervals excludes 0 (the delta method's relative interval also carries the
        uncertainty of the control mean it divides by)."""
        if self.error is not None or self.absolute.error is not None:
            return False
        return self.relative.significant != (self.absolute.ci_low > 0 or self.absolute.ci_high < 0)

    @property
    def conclusion(self) -> Literal["significant", "not_significant", "inconclusive", "untestable"]:
        """What the verdict concludes (before any reason to withhold it)."""
        if self.error is not None:
            return "untestable"
        if self.tests_disagree:
            return "inconclusive"
        return "significant" if self.relative.significant else "not_significant"

    def verdict(self, metric: str, variant: str = "treatment", withheld: str | None = None) -> str:
        """The one-line verdict of this row (see `metrics.stats.verdict.verdict`).

        Args:
            metric: The metric's name.
            variant: The variant's name.
            withheld: Why no judgement may be given (too few users, a sample ratio mismatch).
        """
        ci = None if self.ci_low is None or self.ci_high is None else (self.ci_low, self.ci_high)
        return _verdict(
            metric,
            self.relative_lift if self.error is None else None,
            ci,
            self.p_value,
            self.relative.alpha,
            self.lower_is_better,
            variant=variant,
            error=self.error,
            absolute=self.absolute_interval,
            withheld=withheld,
        )
