"""The one-line verdict."""

from __future__ import annotations

import pytest

from metrics.stats.verdict import verdict


def test_the_example_of_the_brief() -> None:
    assert (
        verdict(
            "conversion",
            relative_lift=0.119,
            ci=(0.02, 0.22),
            p=0.014,
            alpha=0.05,
            lower_is_better=False,
        )
        == "treatment raises conversion by 11.9% (95% CI 2.0% to 22.0%), significant"
    )


@pytest.mark.parametrize(
    ("lift", "ci", "lower_is_better", "want"),
    [
        (
            -0.05,
            (-0.09, -0.01),
            False,
            "treatment lowers revenue_per_user by 5.0% (95% CI -9.0% to -1.0%), significant",
        ),
        (
            -0.05,
            (-0.09, -0.01),
            True,
            "treatment lowers revenue_per_user by 5.0% (95% CI -9.0% to -1.0%), significant (good)",
        ),
        (
            0.05,
            (0.01, 0.09),
            True,
            "treatment raises revenue_per_user by 5.0% (95% CI 1.0% to 9.0%), significant (bad)",
        ),
    ],
)
def test_direction_and_guardrails(lift, ci, lower_is_better, want) -> None:
    assert verdict("revenue_per_user", lift, ci, 0.01, lower_is_better=lower_is_better) == want


def test_not_significant() -> None:
    assert verdict("crashed", -0.02, (-0.08, 0.04), 0.5, lower_is_better=True) == (
        "treatment: no significant change in crashed (-2.0%, 95% CI -8.0% to 4.0%, p = 0.5)"
    )
    # Significance is p < alpha, strictly.
    assert verdict("x", 0.1, (0.0, 0.2), 0.05).startswith("treatment: no significant change")


def test_alpha_names_the_interval_and_the_variant_can_be_named() -> None:
    assert verdict("conversion", 0.1, (0.02, 0.18), 0.03, alpha=0.1, variant="B") == (
        "B raises conversion by 10.0% (90% CI 2.0% to 18.0%), significant"
    )
    assert "99% CI" in verdict("conversion", 0.1, (0.02, 0.18), 0.003, alpha=0.01)


def test_no_negative_zero_and_errors() -> None:
    assert "(0.0%, 95% CI" in verdict("conversion", -0.0001, (-0.01, 0.01), 0.9)
    assert (
        verdict("conversion", None, None, None)
        == "treatment: conversion cannot be compared with control"
    )
