"""Simulated experiments: the tests find a planted lift and keep their false-positive rate."""

from __future__ import annotations

import numpy as np

from metrics.stats.bayesian import bayesian_ab_test
from metrics.stats.sequential import sequential_two_sided_ttest
from metrics.stats.statistics import ProportionStatistic, SampleMeanStatistic
from metrics.stats.ttest import two_sided_ttest

N = 20_000
BASE_RATE = 0.10


def _bernoulli_arm(rng: np.random.Generator, rate: float, n: int = N) -> ProportionStatistic:
    return ProportionStatistic(n, int(rng.binomial(n, rate)))


def test_planted_twenty_percent_lift_is_found() -> None:
    rng = np.random.default_rng(2024)
    control = _bernoulli_arm(rng, BASE_RATE)
    treatment = _bernoulli_arm(rng, BASE_RATE * 1.2)
    result = two_sided_ttest(control, treatment)
    assert result.ci_low < 0.20 < result.ci_high
    assert result.p_value < 0.05
    assert bayesian_ab_test(control, treatment).chance_to_win > 0.99


def test_interval_covers_the_planted_lift_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(200):
        result = two_sided_ttest(_bernoulli_arm(rng, BASE_RATE), _bernoulli_arm(rng, BASE_RATE * 1.2))
        covered += result.ci_low < 0.20 < result.ci_high
    assert 0.91 <= covered / 200 <= 0.99


def test_false_positive_rate_without_an_effect() -> None:
    rng = np.random.default_rng(11)
    positives = sum(
        two_sided_ttest(_bernoulli_arm(rng, BASE_RATE), _bernoulli_arm(rng, BASE_RATE)).p_value < 0.05
        for _ in range(200)
    )
    assert 0.02 <= positives / 200 <= 0.09


def test_false_positive_rate_on_a_skewed_revenue_metric() -> None:
    # Mostly zeros, log-normal spend otherwise: the delta-method relative test still holds.
    rng = np.random.default_rng(12)

    def arm(n: int) -> SampleMeanStatistic:
        values = np.where(rng.random(n) < 0.1, rng.lognormal(3.0, 1.0, n), 0.0)
        return SampleMeanStatistic(n, float(values.sum()), float((values**2).sum()))

    positives = sum(two_sided_ttest(arm(5000), arm(5000)).p_value < 0.05 for _ in range(200))
    assert 0.02 <= positives / 200 <= 0.09


def test_sequential_test_survives_peeking() -> None:
    """Ten looks at a null experiment: peeking inflates the fixed test, not the sequential one."""
    rng = np.random.default_rng(13)
    looks, per_look = 10, 2_000
    fixed_hits = sequential_hits = 0
    for _ in range(200):
        conversions = rng.binomial(per_look, BASE_RATE, size=(2, looks)).cumsum(axis=1)
        fixed = sequential = False
        for look in range(looks):
            n = per_look * (look + 1)
            control = ProportionStatistic(n, int(conversions[0, look]))
            treatment = ProportionStatistic(n, int(conversions[1, look]))
            fixed |= two_sided_ttest(control, treatment).p_value < 0.05
            sequential |= sequential_two_sided_ttest(control, treatment).p_value < 0.05
        fixed_hits += fixed
        sequential_hits += sequential
    assert sequential_hits / 200 <= 0.05
    assert fixed_hits > 2 * sequential_hits
