"""SRM against gbstats's check_srm and scipy's chi-square test."""

from __future__ import annotations

import pytest
from gbstats_cases import assert_close, cases
from scipy import stats

from metrics.stats.results import NO_UNITS_IN_VARIATION, TOO_FEW_VARIANTS
from metrics.stats.srm import check_srm

SRM_CASES = cases("srm")


@pytest.mark.parametrize("case", SRM_CASES, ids=[str(c["users"]) for c in SRM_CASES])
def test_srm_matches_gbstats(case: dict) -> None:
    result = check_srm(case["users"], case["weights"])
    assert_close(result.p_value, case["gbstats"]["p_value"], "p_value")


@pytest.mark.parametrize(
    "case",
    [c for c in SRM_CASES if sum(c["users"]) > 0 and all(w > 0 for w in c["weights"])],
    ids=lambda c: str(c["users"]),
)
def test_srm_is_scipys_chi_square(case: dict) -> None:
    users, weights = case["users"], case["weights"]
    expected = [w / sum(weights) * sum(users) for w in weights]
    scipy_result = stats.chisquare(users, expected)
    result = check_srm(users, weights)
    assert result.chi_square == pytest.approx(scipy_result.statistic, rel=1e-10, abs=1e-12)
    assert result.p_value == pytest.approx(scipy_result.pvalue, rel=1e-9, abs=1e-300)
    assert result.dof == len(users) - 1


def test_equal_split_is_the_default() -> None:
    assert check_srm([5012, 4988]) == check_srm([5012, 4988], [0.5, 0.5])
    assert check_srm([100, 97, 103]).p_value == pytest.approx(stats.chisquare([100, 97, 103]).pvalue, rel=1e-12)


def test_mismatch_uses_the_threshold() -> None:
    assert not check_srm([5012, 4988]).mismatch
    assert check_srm([5400, 4600]).mismatch
    assert not check_srm([5100, 4900]).mismatch
    assert check_srm([5100, 4900], threshold=0.05).mismatch


def test_degenerate_and_bad_inputs() -> None:
    empty = check_srm([0, 0])
    assert (empty.p_value, empty.error, empty.mismatch) == (1.0, NO_UNITS_IN_VARIATION, False)
    single = check_srm([100])
    assert (single.p_value, single.error) == (1.0, TOO_FEW_VARIANTS)
    with pytest.raises(ValueError):
        check_srm([10, -1])
    with pytest.raises(ValueError):
        check_srm([10, 10], [1.0])
    with pytest.raises(ValueError):
        check_srm([10, 10], [0.0, 0.0])
