"""Power planning: GrowthBook's formulas checked against gbstats's own standard errors (the
fixture `power.json`, see scripts/gbstats_fixtures/generate.py) and a seeded simulation of
experiments read out with the project's own test."""

from __future__ import annotations

import numpy as np
import pytest
from gbstats_cases import cases
from scipy import stats

from metrics.stats.comparison import compare_variant
from metrics.stats.power import (
    PowerInputs,
    minimum_detectable_effect,
    power,
    relative_lift_variance,
    users_per_arm,
)
from metrics.stats.statistics import SampleMeanStatistic

POWER_CASES = cases("power")


def _ids(case):
    i = case["inputs"]
    return f"mean{i['mean']}-n{i['users_per_arm']}-d{i['effect']}-a{i['alpha']}-k{i['arms']}"


@pytest.mark.parametrize("case", POWER_CASES, ids=[_ids(c) for c in POWER_CASES])
def test_plan_numbers_equal_gbstats(case):
    i, want = case["inputs"], case["gbstats"]
    inputs = PowerInputs(mean=i["mean"], variance=i["variance"])
    n = i["users_per_arm"]
    se = relative_lift_variance(inputs, i["effect"], n) ** 0.5
    # gbstats's standard error uses the sample variance of n users built from the moments: the
    # same number up to the (n - 1) / n of its construction, so 1e-6 relative.
    assert se == pytest.approx(want["uplift_stddev"], rel=1e-6)
    assert power(inputs, i["effect"], n, alpha=i["alpha"], arms=i["arms"]) == pytest.approx(want["power"], rel=1e-6)
    mde = minimum_detectable_effect(inputs, n, alpha=i["alpha"], target_power=i["power"], arms=i["arms"])
    assert mde == pytest.approx(want["mde"], rel=1e-6)
    # The sample size inverts the MDE: one user fewer would not reach the target power.
    needed = users_per_arm(inputs, mde * 1.0000001, alpha=i["alpha"], target_power=i["power"], arms=i["arms"])
    assert abs(needed - n) <= 1


def test_no_effect_is_detectable_with_too_few_users():
    assert minimum_detectable_effect(PowerInputs(mean=0.01, variance=0.0099), 50) is None


def test_cuped_shrinks_the_plan_by_the_variance_it_removes():
    plain = PowerInputs(mean=3.0, variance=9.0)
    adjusted = PowerInputs(mean=3.0, variance=9.0, variance_reduction=0.36)
    # n is proportional to the variance: 64% of the users.
    assert users_per_arm(adjusted, 0.05) == pytest.approx(0.64 * users_per_arm(plain, 0.05), abs=1)


def test_power_against_the_noncentral_t():
    """At the planned n the t-test's exact power (scipy's noncentral t with the relative
    lift's standard error) is the normal approximation's within a few thousandths."""
    inputs = PowerInputs(mean=3.2, variance=6.4)
    n = users_per_arm(inputs, 0.1)
    se = relative_lift_variance(inputs, 0.1, n) ** 0.5
    df = 2 * n - 2
    t = stats.t.ppf(0.975, df)
    exact = stats.nct.sf(t, df, 0.1 / se) + stats.nct.cdf(-t, df, 0.1 / se)
    assert power(inputs, 0.1, n) == pytest.approx(exact, abs=3e-3)
    assert exact == pytest.approx(0.8, abs=5e-3)


def test_planned_sample_detects_the_effect_at_the_planned_rate_in_simulation():
    """1000 simulated experiments of the planned size, per-user values normal with the
    planned mean and variance and the treatment higher by the MDE, read out by the readout's
    own relative test: the share significant is the planned power (0.8) within 3 standard
    errors of a simulated proportion; with no effect it is alpha."""
    rng = np.random.default_rng(20260419)
    inputs = PowerInputs(mean=3.2, variance=6.4)
    n = users_per_arm(inputs, 0.1)
    reps = 1000

    def share_significant(effect: float) -> float:
        hits = 0
        for _ in range(reps):
            a = rng.normal(inputs.mean, inputs.variance**0.5, n)
            b = rng.normal(inputs.mean * (1 + effect), inputs.variance**0.5, n)
            result = compare_variant(
                SampleMeanStatistic(n, float(a.sum()), float((a * a).sum())),
                SampleMeanStatistic(n, float(b.sum()), float((b * b).sum())),
            )
            hits += result.p_value < 0.05
        return hits / reps

    observed = share_significant(0.1)
    tolerance = 3 * (0.8 * 0.2 / reps) ** 0.5
    assert observed == pytest.approx(power(inputs, 0.1, n), abs=tolerance)
    assert share_significant(0.0) == pytest.approx(0.05, abs=3 * (0.05 * 0.95 / reps) ** 0.5)
