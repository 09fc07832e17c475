"""Sample ratio mismatch: gbstats's `check_srm` (`utils.py`).

A chi-square goodness-of-fit test of the units assigned to each variant against the split the
experiment was configured with (equal by default). A tiny p-value means assignment or logging
is broken and the readout should not be trusted; GrowthBook warns below 0.001.
"""

from __future__ import annotations

from collections.abc import Sequence

from metrics.stats.distributions import chi2_sf
from metrics.stats.results import NO_UNITS_IN_VARIATION, TOO_FEW_VARIANTS, SrmResult

DEFAULT_SRM_THRESHOLD = 0.001


def check_srm(
    users: Sequence[int],
    weights: Sequence[float] | None = None,
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SrmResult:
    """Chi-square test of observed units per variant against the expected weights.

    As in gbstats, a variant with a weight of 0 or less adds nothing to the statistic, and
    the degrees of freedom are the number of variants - 1.

    Args:
        users: Units observed in each variant, control first.
        weights: Expected traffic share of each variant (any scale); equal by default.
        threshold: p-values below this flag a mismatch.

    Returns:
        The p-value and statistic; with no units at all the p-value is 1 and the result
        carries `NO_UNITS_IN_VARIATION`, with fewer than two variants `TOO_FEW_VARIANTS`.

    Raises:
        ValueError: On negative counts, or weights that do not match the variants.

    Examples:
        >>> r = check_srm([5012, 4988])
        >>> round(r.p_value, 4), r.mismatch
        (0.8103, False)
        >>> check_srm([5400, 4600]).mismatch
        True
        >>> round(check_srm([5012, 4988], [0.5, 0.5]).chi_square, 4)
        0.0576
    """
    counts = [float(u) for u in users]
    if any(c < 0 for c in counts):
        raise ValueError(f"unit counts must not be negative, got {list(users)}")
    if weights is None:
        expected_weights = [1.0] * len(counts)
    else:
        expected_weights = [float(w) for w in weights]
        if len(expected_weights) != len(counts):
            raise ValueError(f"{len(counts)} variants but {len(expected_weights)} weights")
    dof = len(counts) - 1
    if dof < 1:
        return SrmResult(1.0, 0.0, max(dof, 0), threshold, TOO_FEW_VARIANTS)
    total = sum(counts)
    if total == 0:
        return SrmResult(1.0, 0.0, dof, threshold, NO_UNITS_IN_VARIATION)
    total_weight = sum(expected_weights)  # gbstats sums every weight, skipped ones included
    if total_weight <= 0 or all(w <= 0 for w in expected_weights):
        raise ValueError(f"at least one weight must be positive, got {list(expected_weights)}")
    chi_square = 0.0
    for observed, weight in zip(counts, expected_weights, strict=True):
        if weight <= 0:
            continue
        expected = weight / total_weight * total
        chi_square += (observed - expected) ** 2 / expected
    return SrmResult(chi2_sf(chi_square, dof), chi_square, dof, threshold)
