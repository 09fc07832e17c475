"""The pooled two-proportion z-test: whether a release regressed against its predecessor,
and the launch scorecards' before/after rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

from metrics.stats.distributions import normal_sf

#: Result codes of degenerate inputs (a result, not an exception).
EMPTY_SAMPLE = "empty_sample"
NO_VARIANCE = "no_variance"


@dataclass(frozen=True)
class TwoProportionTest:
    """Pooled two-proportion z-test of `successes / trials` in a candidate vs a baseline.

    `difference` is candidate - baseline; `p_value` is two-sided. `error` is set (and the
    statistics are None) when a sample is empty or both proportions are 0 or 1.
    """

    candidate_rate: float | None
    baseline_rate: float | None
    difference: float | None
    z: float | None
    p_value: float | None
    error: str | None = None


def two_proportion_z_test(
    candidate_successes: int, candidate_trials: int, baseline_successes: int, baseline_trials: int
) -> TwoProportionTest:
    """z = (p1 - p0) / sqrt(p (1 - p) (1/n1 + 1/n0)) with the pooled p = (x1 + x0) / (n1 + n0).

    >>> t = two_proportion_z_test(30, 300, 10, 300)
    >>> round(t.z, 4), round(t.p_value, 6)
    (3.2733, 0.001063)
    >>> two_proportion_z_test(0, 0, 1, 10).error
    'empty_sample'
    """
    if candidate_trials <= 0 or baseline_trials <= 0:
        return TwoProportionTest(None, None, None, None, None, EMPTY_SAMPLE)
    p1 = candidate_successes / candidate_trials
    p0 = baseline_successes / baseline_trials
    pooled = (candidate_successes + baseline_successes) / (candidate_trials + baseline_trials)
    variance = pooled * (1 - pooled) * (1 / candidate_trials + 1 / baseline_trials)
    if variance <= 0:
        return TwoProportionTest(p1, p0, p1 - p0, None, None, NO_VARIANCE)
    z = (p1 - p0) / math.sqrt(variance)
    return TwoProportionTest(p1, p0, p1 - p0, z, min(1.0, 2 * normal_sf(abs(z))))
