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
    assert verdict("conversion", None, None, None) == (
        "treatment: conversion cannot be compared with control: the test could not run"
    )


@pytest.mark.parametrize(
    "code",
    [
        "NO_UNITS_IN_VARIATION",
        "ZERO_NEGATIVE_VARIANCE",
        "ZERO_NEGATIVE_BASELINE_VARIATION",
        "TOO_FEW_VARIANTS",
    ],
)
def test_error_codes_are_said_in_words(code) -> None:
    sentence = verdict("conversion", None, None, None, error=code)
    assert code not in sentence and code.lower() not in sentence
    assert sentence.startswith("treatment: conversion cannot be compared with control: ")


def test_a_zero_baseline_shows_the_absolute_interval() -> None:
    sentence = verdict(
        "crashed",
        None,
        None,
        None,
        error="ZERO_NEGATIVE_BASELINE_VARIATION",
        absolute=(0.03, 0.004, 0.056),
    )
    assert sentence == (
        "treatment: no relative change can be given for crashed (control's mean is 0, so a "
        "change relative to it means nothing); absolute change +0.03 (95% CI 0.004 to 0.056)"
    )


def test_a_withheld_verdict_never_says_significant() -> None:
    reason = "only 10 users in control and 12 in treatment, fewer than 100 per variant"
    sentence = verdict("conversion", -0.657, (-1.0, -0.172), 0.001, withheld=reason)
    assert "significant" not in sentence
    assert sentence == (f"treatment: conversion not judged: {reason} (observed -65.7%, 95% CI -100.0% to -17.2%)")


@pytest.mark.parametrize(
    ("relative_ci", "p", "absolute", "want"),
    [
        # relative includes 0, absolute excludes it (the sample's android row)
        ((-0.02, 0.789), 0.062, (0.128, 0.015, 0.241), "includes 0 but the absolute"),
        # relative excludes 0, absolute includes it
        ((0.01, 0.5), 0.04, (0.1, -0.01, 0.21), "excludes 0 but the absolute"),
    ],
)
def test_disagreeing_tests_give_an_inconclusive_verdict(relative_ci, p, absolute, want) -> None:
    sentence = verdict("conversion", 0.3, relative_ci, p, absolute=absolute)
    assert sentence.startswith("treatment: inconclusive for conversion: ")
    assert want in sentence and "significant" not in sentence


def test_agreeing_tests_keep_the_plain_verdict() -> None:
    assert verdict("conversion", 0.119, (0.02, 0.22), 0.014, absolute=(0.012, 0.002, 0.022)) == (
        "treatment raises conversion by 11.9% (95% CI 2.0% to 22.0%), significant"
    )
    assert verdict("conversion", 0.01, (-0.03, 0.05), 0.6, absolute=(0.001, -0.003, 0.005)) == (
        "treatment: no significant change in conversion (+1.0%, 95% CI -3.0% to 5.0%, p = 0.6)"
    )
