"""Multiple-testing corrections of p-values across the metrics and variants of a readout.

gbstats 0.8.0 has no correction of its own (GrowthBook applies one outside the stats engine),
so these are the textbook adjusted p-values: Holm-Bonferroni controls the family-wise error
rate, Benjamini-Hochberg the false discovery rate. An adjusted p-value is compared with the
unchanged alpha. Only p-values are adjusted, not confidence intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

CorrectionMethod = Literal["holm-bonferroni", "benjamini-hochberg"]


def _checked(p_values: Sequence[float]) -> list[float]:
    values = [float(p) for p in p_values]
    for p in values:
        if math.isnan(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p-values must lie in [0, 1], got {p}")
    return values


def holm_bonferroni(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm's step-down adjusted p-values, in the order given.

    The i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)).

    Args:
        p_values: Unadjusted p-values.

    Returns:
        Adjusted p-values, same order.

    Raises:
        ValueError: If a p-value is outside [0, 1].

    Examples:
        >>> holm_bonferroni([0.01, 0.04, 0.03, 0.005])
        (0.03, 0.06, 0.06, 0.02)
    """
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=values.__getitem__)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return tuple(adjusted)


def benjamini_hochberg(p_values: Sequence[float]) -> tuple[float, ...]:
    """Benjamini-Hochberg step-up adjusted p-values (q-values), in the order given.

    The i-th smallest of m p-values becomes min over j >= i of min(1, m p_(j) / j).

    Args:
        p_values: Unadjusted p-values.

    Returns:
        Adjusted p-values, same order.

    Raises:
        ValueError: If a p-value is outside [0, 1].

    Examples:
        >>> [round(p, 6) for p in benjamini_hochberg([0.01, 0.04, 0.03, 0.005])]
        [0.02, 0.04, 0.04, 0.02]
    """
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=values.__getitem__, reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, index in enumerate(order):
        rank = m - position
        running = min(running, m * values[index] / rank)
        adjusted[index] = running
    return tuple(adjusted)


def adjust_p_values(p_values: Sequence[float], method: CorrectionMethod) -> tuple[float, ...]:
    """Adjust p-values by the named method.

    Args:
        p_values: Unadjusted p-values.
        method: `holm-bonferroni` or `benjamini-hochberg`.

    Returns:
        Adjusted p-values, same order.

    Examples:
        >>> adjust_p_values([0.02, 0.5], "holm-bonferroni")
        (0.04, 0.5)
    """
    if method == "holm-bonferroni":
        return holm_bonferroni(p_values)
    if method == "benjamini-hochberg":
        return benjamini_hochberg(p_values)
    raise ValueError(f"unknown correction method {method!r}")
