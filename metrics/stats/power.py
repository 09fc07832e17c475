"""Power planning for relative effects, as GrowthBook's power calculator computes it.

GrowthBook (docs "Power analysis", front-end `PowerCalculation/stats.ts`) plans a two-sided
frequentist test of the relative lift. With per-user variance s2 and control mean mu, an arm
of n users, and a true relative effect d (treatment mean mu * (1 + d)), the delta method gives
the variance of the estimated relative lift

    v(d, n) = s2 / (n mu^2) + s2 (1 + d)^2 / (n mu^2)

(gbstats's `frequentist_variance` of the relative difference with equal per-user variances),
and the power of the test at level alpha with k arms (Bonferroni over the k - 1 comparisons
with control, z* = z_{1 - alpha / (2 (k - 1))}) is

    power = 1 - Phi(z* - d / sqrt(v)) + Phi(-z* - d / sqrt(v)).

The minimum detectable effect at power 1 - beta solves d / sqrt(v(d, n)) = z* + z_{1-beta}
(the far tail neglected), a quadratic in d: with c = (z* + z_{1-beta})^2 s2 / (n mu^2),
(1 - c) d^2 - 2 c d - 2 c = 0, so d = (c + sqrt(2c - c^2)) / (1 - c); when c >= 1 no effect
is detectable with n users. CUPED multiplies s2 by 1 - rho^2, rho the correlation of the
metric with its own pre-period value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from metrics.stats.distributions import normal_cdf as norm_cdf
from metrics.stats.distributions import normal_ppf as norm_ppf


@dataclass(frozen=True)
class PowerInputs:
    """What a plan needs to know about a metric over the eligible users.

    Attributes:
        mean: Per-user mean of the metric (the control mean the effect is relative to).
        variance: Per-user variance (n - 1 denominator).
        variance_reduction: Share of the variance CUPED removes (rho^2), 0 without CUPED.
    """

    mean: float
    variance: float
    variance_reduction: float = 0.0

    @property
    def adjusted_variance(self) -> float:
        return self.variance * (1.0 - self.variance_reduction)


def critical_z(alpha: float, arms: int) -> float:
    """z* of a two-sided test at `alpha`, Bonferroni-corrected over the `arms - 1` comparisons."""
    return norm_ppf(1.0 - alpha / (2.0 * max(arms - 1, 1)))


def relative_lift_variance(inputs: PowerInputs, effect: float, users_per_arm: float) -> float:
    """v(d, n): variance of the estimated relative lift (delta method, equal variances)."""
    s2 = inputs.adjusted_variance
    return s2 / (users_per_arm * inputs.mean**2) * (1.0 + (1.0 + effect) ** 2)


def power(inputs: PowerInputs, effect: float, users_per_arm: float, *, alpha: float = 0.05, arms: int = 2) -> float:
    """Probability that a true relative `effect` is significant with `users_per_arm` users.

    Examples:
        >>> round(power(PowerInputs(mean=0.1, variance=0.09), 0.1, 15_612), 3)
        0.8
    """
    if users_per_arm <= 0 or inputs.mean == 0:
        return float("nan")
    se = math.sqrt(relative_lift_variance(inputs, effect, users_per_arm))
    if se == 0:
        return 1.0 if effect != 0 else alpha
    z = critical_z(alpha, arms)
    standardized = effect / se
    return 1.0 - norm_cdf(z - standardized) + norm_cdf(-z - standardized)


def minimum_detectable_effect(
    inputs: PowerInputs, users_per_arm: float, *, alpha: float = 0.05, target_power: float = 0.8, arms: int = 2
) -> float | None:
    """The smallest relative effect detected with probability `target_power` (None: none is,
    the arms are too small for the metric's spread).

    Examples:
        >>> round(minimum_detectable_effect(PowerInputs(mean=0.1, variance=0.09), 15_612), 4)
        0.1
    """
    if users_per_arm <= 0 or inputs.mean == 0:
        return None
    multiplier = critical_z(alpha, arms) + norm_ppf(target_power)
    c = multiplier**2 * inputs.adjusted_variance / (users_per_arm * inputs.mean**2)
    if c >= 1.0:
        return None
    return (c + math.sqrt(2.0 * c - c * c)) / (1.0 - c)


def users_per_arm(
    inputs: PowerInputs, effect: float, *, alpha: float = 0.05, target_power: float = 0.8, arms: int = 2
) -> int:
    """Users each arm needs for `target_power` at a relative `effect` (the MDE inverted: the
    smallest n whose minimum detectable effect is at most `effect`).

    Examples:
        >>> users_per_arm(PowerInputs(mean=0.1, variance=0.09), 0.1)
        15612
    """
    if effect == 0 or inputs.mean == 0:
        raise ValueError("a sample size needs a non-zero effect and a non-zero mean")
    multiplier = critical_z(alpha, arms) + norm_ppf(target_power)
    n = multiplier**2 * inputs.adjusted_variance * (1.0 + (1.0 + effect) ** 2) / (inputs.mean**2 * effect**2)
    return max(2, math.ceil(n))
