"""One-line, plain-language verdicts for a metric's readout."""

from __future__ import annotations

import math


def _percent(value: float) -> str:
    text = f"{100.0 * value:.1f}%"
    return "0.0%" if text == "-0.0%" else text


def _level(alpha: float) -> str:
    return f"{100.0 * (1.0 - alpha):.10g}%"


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
) -> str:
    """Say in one line what the experiment did to a metric.

    Significance is p < alpha. For a metric where lower is better (a guardrail), a
    significant drop is marked "(good)" and a significant rise "(bad)".

    Args:
        metric: The metric's name.
        relative_lift: Relative lift of the variant over control (0.119 is +11.9%).
        ci: Confidence interval of the relative lift.
        p: Two-sided p-value of the lift.
        alpha: Significance level; also names the interval (0.05 -> "95% CI").
        lower_is_better: True for metrics such as crash rate.
        variant: What to call the variant.
        error: The test's error code, if it could not run.

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
        'treatment: conversion cannot be compared with control (ZERO_NEGATIVE_VARIANCE)'
    """
    if error is not None or relative_lift is None or ci is None or p is None:
        reason = f" ({error})" if error is not None else ""
        return f"{variant}: {metric} cannot be compared with control{reason}"
    interval = f"{_level(alpha)} CI {_percent(ci[0])} to {_percent(ci[1])}"
    if not p < alpha or relative_lift == 0 or math.isnan(relative_lift):
        sign = "+" if relative_lift > 0 else ""
        return (
            f"{variant}: no significant change in {metric} "
            f"({sign}{_percent(relative_lift)}, {interval}, p = {p:.2g})"
        )
    direction = "raises" if relative_lift > 0 else "lowers"
    judgement = ""
    if lower_is_better:
        judgement = " (good)" if relative_lift < 0 else " (bad)"
    return (
        f"{variant} {direction} {metric} by {_percent(abs(relative_lift))} "
        f"({interval}), significant{judgement}"
    )
