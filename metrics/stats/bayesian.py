"""Bayesian readout: gbstats's `EffectBayesianABTest`, the default Bayesian test of 0.8.0.

The data give a normal likelihood for the lift with the frequentist point estimate as mean
and its delta-method variance. With gbstats's default uninformative prior (`proper=False`)
the posterior is that same normal, so chance to win is P(lift > 0) = Phi(lift / se); with a
proper Gaussian prior the usual precision-weighted update applies. Risk is the expected loss
of each decision under the posterior. For a metric where lower is better (a guardrail such
as `crashed`) pass `inverse=True`: chance to win becomes P(lift < 0) and the two risks swap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from metrics.stats.cuped import regression_adjust
from metrics.stats.distributions import normal_cdf, normal_pdf, normal_ppf, normal_sf
from metrics.stats.lift import pair_lift, pair_lift_variance
from metrics.stats.results import (
    NO_UNITS_IN_VARIATION,
    ZERO_NEGATIVE_BASELINE_VARIATION,
    ZERO_NEGATIVE_VARIANCE,
    BayesianResult,
    DifferenceType,
)
from metrics.stats.statistics import TestStatistic
from metrics.stats.ttest import check_arguments


@dataclass(frozen=True)
class GaussianPrior:
    """A normal prior on the lift; ignored unless `proper` (gbstats's default is improper).

    Attributes:
        mean: Prior mean of the lift.
        variance: Prior variance of the lift.
        proper: Whether the prior is used at all.
    """

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False


def chance_to_win(mean: float, stddev: float, inverse: bool = False) -> float:
    """Posterior probability that treatment is better.

    Args:
        mean: Posterior mean of the lift.
        stddev: Posterior standard deviation (> 0).
        inverse: True when lower is better.

    Returns:
        P(lift > 0), or P(lift < 0) when `inverse`.

    Examples:
        >>> round(chance_to_win(0.119, 0.05), 6)
        0.991344
        >>> round(chance_to_win(0.119, 0.05, inverse=True), 6)
        0.008656
    """
    z = mean / stddev
    return normal_sf(z) if inverse else normal_cdf(z)


def risk(mean: float, stddev: float) -> tuple[float, float]:
    """Expected loss of shipping control and of shipping treatment, higher being better.

    The loss of shipping control is what the lift would have gained, E[max(lift, 0)]; that of
    shipping treatment is what it would lose, E[max(-lift, 0)]. gbstats computes the same
    quantities as P(side) * truncated-normal mean; the closed forms here avoid dividing two
    vanishing tail probabilities.

    Args:
        mean: Posterior mean of the lift.
        stddev: Posterior standard deviation (> 0).

    Returns:
        (risk of control, risk of treatment).

    Examples:
        >>> [round(r, 6) for r in risk(0.0, 1.0)]  # both are 1 / sqrt(2 pi)
        [0.398942, 0.398942]
    """
    z = mean / stddev
    density = stddev * normal_pdf(z)
    risk_control = mean * normal_cdf(z) + density
    risk_treatment = density - mean * normal_sf(z)
    return max(risk_control, 0.0), max(risk_treatment, 0.0)


def credible_interval(mean: float, stddev: float, alpha: float) -> tuple[float, float]:
    """Central (1 - alpha) interval of a normal posterior.

    Examples:
        >>> [round(x, 6) for x in credible_interval(0.0, 1.0, 0.05)]
        [-1.959964, 1.959964]
    """
    z = normal_ppf(1.0 - alpha / 2.0)
    return mean - z * stddev, mean + z * stddev


def _default_output(difference_type: DifferenceType, alpha: float, error: str) -> BayesianResult:
    return BayesianResult(
        difference_type=difference_type,
        expected=0.0,
        ci_low=0.0,
        ci_high=0.0,
        stddev=0.0,
        chance_to_win=0.5,
        risk_control=0.0,
        risk_treatment=0.0,
        alpha=alpha,
        error=error,
    )


def bayesian_ab_test(
    control: TestStatistic,
    treatment: TestStatistic,
    *,
    inverse: bool = False,
    alpha: float = 0.05,
    difference_type: DifferenceType = "relative",
    prior: GaussianPrior = GaussianPrior(),
    prior_type: Literal["relative", "absolute"] = "relative",
) -> BayesianResult:
    """Chance to win, risk and credible interval of the lift (gbstats `EffectBayesianABTest`).

    Args:
        control: Control's sufficient statistic.
        treatment: Treatment's, of the same kind. CUPED statistics get the pooled theta.
        inverse: True when lower is better; flips chance to win and swaps the risks.
        alpha: The credible interval covers 1 - alpha.
        difference_type: `relative` (the default) or `absolute`.
        prior: Prior on the lift; gbstats's default is flat (improper).
        prior_type: Scale the prior is stated on; it is rescaled by the control mean when it
            differs from `difference_type`, as gbstats does.

    Returns:
        The posterior summary, or a result carrying an error code (chance to win 0.5) when a
        variant is empty or has no variance, or the control mean is zero for a relative lift.

    Examples:
        >>> from metrics.stats.statistics import ProportionStatistic
        >>> r = bayesian_ab_test(ProportionStatistic(5012, 506), ProportionStatistic(4988, 564))
        >>> round(r.chance_to_win, 4), [round(x, 5) for x in r.risk]
        (0.9679, [0.1208, 0.00081])
    """
    check_arguments(control, treatment, alpha, difference_type)
    relative = difference_type == "relative"
    control, treatment = regression_adjust(control, treatment)
    if relative and (control.mean == 0 or control.unadjusted_mean == 0):
        return _default_output(difference_type, alpha, ZERO_NEGATIVE_BASELINE_VARIATION)
    if control.n == 0 or treatment.n == 0:
        return _default_output(difference_type, alpha, NO_UNITS_IN_VARIATION)
    if control.has_zero_variance or treatment.has_zero_variance:
        return _default_output(difference_type, alpha, ZERO_NEGATIVE_VARIANCE)

    baseline = control.unadjusted_mean
    if relative and prior_type == "absolute":
        prior = GaussianPrior(prior.mean / abs(baseline), prior.variance / baseline**2, prior.proper)
    elif not relative and prior_type == "relative":
        prior = GaussianPrior(prior.mean * abs(baseline), prior.variance * baseline**2, prior.proper)

    if prior.proper and not prior.variance > 0:
        # A relative prior rescaled by a zero control mean (gbstats divides by zero here).
        return _default_output(difference_type, alpha, ZERO_NEGATIVE_BASELINE_VARIATION)

    data_variance = pair_lift_variance(control, treatment, difference_type)
    data_mean = pair_lift(control, treatment, difference_type)
    if prior.proper:
        precision = 1.0 / data_variance + 1.0 / prior.variance
        mean = (data_mean / data_variance + prior.mean / prior.variance) / precision
    else:
        precision = 1.0 / data_variance
        mean = data_mean
    stddev = math.sqrt(1.0 / precision)
    risk_control, risk_treatment = risk(mean, stddev)
    if inverse:
        risk_control, risk_treatment = risk_treatment, risk_control
    ci_low, ci_high = credible_interval(mean, stddev, alpha)
    return BayesianResult(
        difference_type=difference_type,
        expected=mean,
        ci_low=ci_low,
        ci_high=ci_high,
        stddev=stddev,
        chance_to_win=chance_to_win(mean, stddev, inverse),
        risk_control=risk_control,
        risk_treatment=risk_treatment,
        alpha=alpha,
    )
