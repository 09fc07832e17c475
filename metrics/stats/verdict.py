"""One-line, plain-language verdicts for a metric's readout.

The rule a verdict follows (README, "Experiment readouts"):

- The verdict follows the relative-lift test, whose interval it prints and whose p-value is the
  readout's `p_value`: "significant" exactly when that interval excludes 0 (p < alpha).
- When the absolute test (the difference of means, Welch's t) is given and reaches the other
  conclusion, the verdict is "inconclusive" and prints both intervals: a sentence never says
  "significant" or "no significant change" while an interval printed beside it says otherwise.
- A verdict is withheld ("not judged", with the reason) when the caller says the comparison
  cannot be trusted (too few users, a sample ratio mismatch); the numbers stay in the row.
- A test that could not run says why in words; its code stays in the readout's `flags`.
"""

from __future__ import annotations

import math

# The codes of `metrics.stats.results` (gbstats's messages) in words a reader can act on.
ERROR_REASONS = {
    "NO_UNITS_IN_VARIATION": "a variant has no users",
    "ZERO_NEGATIVE_VARIANCE": "every user of a variant has the same value, so there is no spread to test against",
    "ZERO_NEGATIVE_BASELINE_VARIATION": "control's mean is 0, so a change relative to it means nothing",
    "TOO_FEW_VARIANTS": "there is no second variant to compare with",
}


def _percent(value: float) -> str:
    text = f"{100.0 * value:.1f}%"
    return "0.0%" if text == "-0.0%" else text


def _signed_percent(value: float) -> str:
    return ("+" if value > 0 and _percent(value) != "0.0%" else "") + _percent(value)


def _number(value: float) -> str:
    text = f"{value:.3g}"
    return "0" if text == "-0" else text


def _level(alpha: float) -> str:
    return f"{100.0 * (1.0 - alpha):.10g}%"


def _excludes_zero(ci: tuple[float, float]) -> bool:
    return ci[0] > 0 or ci[1] < 0


def verdict(
    metric: str,
    relative_lift: float | None,
    ci: tuple[float, float] | None,
    p: float | None,
    alpha: float = 0.05,
    lower_is_better: bool = False,
    *,
    variant: str = "treatment",
    error: str | None = None,
    absolute: tuple[float, float, float] | None = None,
    withheld: str | None = None,
) -> str:
    """Say in one line what the experiment did to a metric.

    Significance is p < alpha on the relative lift, the same test as the printed interval. For
    a metric where lower is better (a guardrail), a significant drop is marked "(good)" and a
    significant rise "(bad)".

    Args:
        metric: The metric's name.
        relative_lift: Relative lift of the variant over control (0.119 is +11.9%).
        ci: Confidence interval of the relative lift.
        p: Two-sided p-value of the lift.
        alpha: Significance level; also names the interval (0.05 -> "95% CI").
        lower_is_better: True for metrics such as crash rate.
        variant: What to call the variant.
        error: The relative test's error code, if it could not run (said in words).
        absolute: (lift, ci_low, ci_high) of the absolute test, when it ran.
        withheld: Why no judgement may be given (too few users, ...), or None.

    Returns:
        The sentence.

    Examples:
        >>> verdict("conversion", relative_lift=0.119, ci=(0.02, 0.22), p=0.014, alpha=0.05,
        ...         lower_is_better=False)
        'treatment raises conversion by 11.9% (95% CI 2.0% to 22.0%), significant'
        >>> verdict("crashed", -0.08, (-0.15, -0.01), 0.03, lower_is_better=True)
        'treatment lowers crashed by 8.0% (95% CI -15.0% to -1.0%), significant (good)'
        >>> verdict("crashed", 0.08, (0.01, 0.15), 0.03, lower_is_better=True)
        'treatment raises crashed by 8.0% (95% CI 1.0% to 15.0%), significant (bad)'
        >>> verdict("conversion", 0.012, (-0.03, 0.054), 0.41)
        'treatment: no significant change in conversion (+1.2%, 95% CI -3.0% to 5.4%, p = 0.41)'
        >>> verdict("conversion", None, None, None, error="ZERO_NEGATIVE_VARIANCE")
        'treatment: conversion cannot be compared with control: every user of a variant has the same value, so there is no spread to test against'
        >>> verdict("conversion", 0.385, (-0.02, 0.789), 0.062, absolute=(0.128, 0.015, 0.241))
        'treatment: inconclusive for conversion: the relative change +38.5% (95% CI -2.0% to 78.9%) includes 0 but the absolute change +0.128 (95% CI 0.015 to 0.241) does not'
        >>> verdict("conversion", -0.657, (-1.0, -0.172), 0.01,
        ...         withheld="only 10 users in control and 12 in treatment, fewer than 100 per variant")
        'treatment: conversion not judged: only 10 users in control and 12 in treatment, fewer than 100 per variant (observed -65.7%, 95% CI -100.0% to -17.2%)'
    """
    level = _level(alpha)
    if error is not None or relative_lift is None or ci is None or p is None:
        reason = ERROR_REASONS.get(error or "", "the test could not run")
        if absolute is not None:
            lift, low, high = absolute
            return (
                f"{variant}: no relative change can be given for {metric} ({reason}); "
                f"absolute change {'+' if lift > 0 else ''}{_number(lift)} "
                f"({level} CI {_number(low)} to {_number(high)})"
            )
        return f"{variant}: {metric} cannot be compared with control: {reason}"
    interval = f"{level} CI {_percent(ci[0])} to {_percent(ci[1])}"
    if withheld is not None:
        return f"{variant}: {metric} not judged: {withheld} (observed {_signed_percent(relative_lift)}, {interval})"
    significant = p < alpha and relative_lift != 0 and not math.isnan(relative_lift)
    if absolute is not None and significant != _excludes_zero(absolute[1:]):
        lift, low, high = absolute
        relative_word, absolute_word = ("excludes", "does not") if significant else ("includes", "does not")
        return (
            f"{variant}: inconclusive for {metric}: the relative change "
            f"{_signed_percent(relative_lift)} ({interval}) {relative_word} 0 but the absolute "
            f"change {'+' if lift > 0 else ''}{_number(lift)} "
            f"({level} CI {_number(low)} to {_number(high)}) {absolute_word}"
        )
    if not significant:
        return (
            f"{variant}: no significant change in {metric} ({_signed_percent(relative_lift)}, {interval}, p = {p:.2g})"
        )
    direction = "raises" if relative_lift > 0 else "lowers"
    judgement = ""
    if lower_is_better:
        judgement = " (good)" if relative_lift < 0 else " (bad)"
    return f"{variant} {direction} {metric} by {_percent(abs(relative_lift))} ({interval}), significant{judgement}"
