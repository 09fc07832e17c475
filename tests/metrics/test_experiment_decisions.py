"""Experiment settings (layers, unknown names, guardrail directions) and the decision rule, on
comparisons computed by the readout's own test from chosen sufficient statistics."""

from __future__ import annotations

from dataclasses import dataclass

from metrics.experiment_design import (
    Guardrail,
    decide,
    guardrail_fails,
    resolve_settings,
)
from metrics.experiments import ReadoutRow
from metrics.stats.comparison import compare_variant
from metrics.stats.statistics import ProportionStatistic


@dataclass(frozen=True)
class _Metric:
    name: str
    lower_is_better: bool = False


KNOWN = {
    "conversion": _Metric("conversion"),
    "crashed_users": _Metric("crashed", True),
    "crashed": _Metric("crashed", True),
    "sessions_per_user": _Metric("sessions_per_user"),
}
META = {
    "defaults": {"goal": ["conversion"], "guardrails": [{"metric": "crashed_users", "harm_threshold": 0.1}]},
    "features": {"search": {"goal": ["sessions_per_user"], "secondary": ["conversoin"]}},
    "experiments": {
        "exp_b": {
            "guardrails": [{"metric": "conversion", "direction": "lower_is_better"}],
            "planned_users_per_variant": 5000,
        }
    },
}


def test_settings_layer_defaults_feature_and_experiment():
    base = resolve_settings(META, "exp_a", "checkout", KNOWN)
    assert base.goal == ("conversion",) and base.role("crashed") == "guardrail"
    assert base.guardrail("crashed") == Guardrail("crashed", True, 0.1)  # an alias resolves to its name
    search = resolve_settings(META, "exp_s", "search", KNOWN)
    assert search.goal == ("sessions_per_user",)
    assert search.problems and "'conversoin'" in search.problems[0] and "conversion" in search.problems[0]
    own = resolve_settings(META, "exp_b", "checkout", KNOWN)
    assert own.planned_users_per_variant == 5000
    assert own.guardrails == (Guardrail("conversion", True, 0.0),)  # the direction the settings give
    assert resolve_settings({}, "exp_a", None, KNOWN).metrics == ()


def _row(metric, control, treated, n=10_000, lower=False, withheld=None):
    comparison = compare_variant(
        ProportionStatistic(n, control * n),
        ProportionStatistic(n, treated * n),
        lower_is_better=lower,
        nonnegative=True,
    )
    return ReadoutRow(metric, "treatment", {}, comparison, None, "", (), withheld=withheld)


def test_decisions_weigh_goals_and_guardrails():
    settings = resolve_settings(META, "exp_a", "checkout", KNOWN)
    lower = {"conversion": False, "crashed": True}
    win, flat = _row("conversion", 0.10, 0.12), _row("conversion", 0.10, 0.1005)
    harm, small_harm = _row("crashed", 0.02, 0.03, lower=True), _row("crashed", 0.020, 0.0215, n=200_000, lower=True)
    safe = _row("crashed", 0.02, 0.02, lower=True)
    assert small_harm.comparison.ci_low > 0 and small_harm.comparison.relative_lift < 0.1  # harm under the threshold
    assert guardrail_fails(harm, settings.guardrail("crashed")) and not guardrail_fails(
        small_harm, settings.guardrail("crashed")
    )

    def decision(*rows, reached=None, status="ended"):
        return decide(list(rows), settings, lower, ["treatment"], reached, status)[0]

    assert decision(win, safe).decision == "ship"
    assert decision(win, small_harm).decision == "ship"
    rolled = decision(win, harm)
    assert rolled.decision == "roll back" and rolled.failing_guardrails == ("crashed",)
    assert "although conversion improved" in rolled.sentence
    assert decision(_row("conversion", 0.12, 0.10), safe).decision == "roll back"  # a goal loser
    assert decision(flat, safe, status="running", reached=False).decision == "keep running"
    assert decision(flat, safe, status="running", reached=True).decision == "no clear signal"
    assert decision(flat, safe).decision == "no clear signal"
    withheld = _row("conversion", 0.10, 0.12, withheld="sample ratio mismatch")
    assert decision(withheld, harm).decision == "not judged"
    assert (
        decide([win], resolve_settings({}, "x", None, KNOWN), lower, ["treatment"], None, "ended")[0].decision
        == "no goal metric"
    )
