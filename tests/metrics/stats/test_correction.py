"""Holm-Bonferroni and Benjamini-Hochberg adjusted p-values against scipy and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from metrics.stats.correction import adjust_p_values, benjamini_hochberg, holm_bonferroni

P_VALUE_SETS = [
    [0.01, 0.04, 0.03, 0.005],
    [0.5],
    [0.001, 0.001, 0.2, 0.2, 0.9],
    [0.049, 0.051, 0.8, 0.0001, 0.3, 0.02, 0.6, 1.0, 0.0],
    list(np.random.default_rng(11).uniform(0, 0.2, 40)),
]


def _holm_by_hand(p_values: list[float]) -> list[float]:
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


@pytest.mark.parametrize("p_values", P_VALUE_SETS)
def test_benjamini_hochberg_matches_scipy(p_values: list[float]) -> None:
    ours = benjamini_hochberg(p_values)
    assert np.allclose(ours, stats.false_discovery_control(p_values, method="bh"), rtol=1e-12, atol=0)
    assert adjust_p_values(p_values, "benjamini-hochberg") == ours


@pytest.mark.parametrize("p_values", P_VALUE_SETS)
def test_holm_matches_the_definition(p_values: list[float]) -> None:
    ours = holm_bonferroni(p_values)
    assert np.allclose(ours, _holm_by_hand(p_values), rtol=1e-12, atol=0)
    assert adjust_p_values(p_values, "holm-bonferroni") == ours
    # Holm never adjusts less than BH and never more than Bonferroni.
    bh = benjamini_hochberg(p_values)
    bonferroni = [min(1.0, len(p_values) * p) for p in p_values]
    assert all(b <= h + 1e-15 <= bo + 2e-15 for b, h, bo in zip(bh, ours, bonferroni, strict=True))


def test_adjusted_p_values_keep_order_and_bounds() -> None:
    p_values = [0.2, 0.01, 0.03, 0.5]
    for adjusted in (holm_bonferroni(p_values), benjamini_hochberg(p_values)):
        assert all(a >= p for a, p in zip(adjusted, p_values, strict=True))
        assert all(0.0 <= a <= 1.0 for a in adjusted)
        ranked = sorted(range(4), key=p_values.__getitem__)
        assert [adjusted[i] for i in ranked] == sorted(adjusted)


def test_empty_and_invalid_inputs() -> None:
    assert holm_bonferroni([]) == () and benjamini_hochberg([]) == ()
    with pytest.raises(ValueError):
        holm_bonferroni([0.1, 1.2])
    with pytest.raises(ValueError):
        benjamini_hochberg([float("nan")])
    with pytest.raises(ValueError):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]
