"""Compute GrowthBook gbstats results for a fixed list of inputs and write them as fixtures.

Run through `generate.sh`, which provides a virtualenv with gbstats 0.8.0 (it needs numpy<2
and pandas<2, so it cannot live in the project's environment). Writes
`tests/fixtures/gbstats/<name>.json`, each holding the gbstats version, the inputs as
per-variant sufficient statistics and gbstats's outputs. The tests of `metrics/stats` read
these files, so CI never needs gbstats itself.

Every input is listed here; the only randomness is a seeded generator used to turn a few
simulated per-user samples into sufficient statistics, and the resulting sums are what the
fixtures record.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.gbstats import process_experiment_results
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)
from gbstats.utils import check_srm

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "gbstats"
GENERATOR = "scripts/gbstats_fixtures/generate.py"
Spec = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Inputs: sufficient statistics in a JSON-friendly form
# ---------------------------------------------------------------------------------------------


def mean_spec(n: int, total: float, sum_squares: float) -> Spec:
    return {"kind": "mean", "n": n, "sum": total, "sum_squares": sum_squares}


def mean_from_moments(n: int, mean: float, variance: float) -> Spec:
    """A sample-mean statistic with the given mean and (n - 1) variance."""
    total = n * mean
    return mean_spec(n, total, variance * (n - 1) + total**2 / n)


def proportion_spec(n: int, total: float) -> Spec:
    return {"kind": "proportion", "n": n, "sum": total}


def ratio_spec(n: int, m: Spec, d: Spec, products: float) -> Spec:
    return {"kind": "ratio", "n": n, "m": m, "d": d, "m_d_sum_of_products": products}


def ra_spec(n: int, post: Spec, pre: Spec, products: float) -> Spec:
    return {
        "kind": "mean_ra",
        "n": n,
        "post": post,
        "pre": pre,
        "post_pre_sum_of_products": products,
    }


def sample_spec(values: np.ndarray) -> Spec:
    values = np.asarray(values, dtype=float)
    return mean_spec(len(values), float(values.sum()), float((values**2).sum()))


def ratio_from_samples(m: np.ndarray, d: np.ndarray) -> Spec:
    return ratio_spec(len(m), sample_spec(m), sample_spec(d), float((m * d).sum()))


def ra_from_samples(post: np.ndarray, pre: np.ndarray, binary: bool = False) -> Spec:
    if binary:
        post_spec = proportion_spec(len(post), float(post.sum()))
        pre_spec = proportion_spec(len(pre), float(pre.sum()))
    else:
        post_spec, pre_spec = sample_spec(post), sample_spec(pre)
    return ra_spec(len(post), post_spec, pre_spec, float((post * pre).sum()))


def build(spec: Spec):
    kind = spec["kind"]
    if kind == "mean":
        return SampleMeanStatistic(n=spec["n"], sum=spec["sum"], sum_squares=spec["sum_squares"])
    if kind == "proportion":
        return ProportionStatistic(n=spec["n"], sum=spec["sum"])
    if kind == "ratio":
        return RatioStatistic(
            n=spec["n"],
            m_statistic=build(spec["m"]),
            d_statistic=build(spec["d"]),
            m_d_sum_of_products=spec["m_d_sum_of_products"],
        )
    if kind == "mean_ra":
        return RegressionAdjustedStatistic(
            n=spec["n"],
            post_statistic=build(spec["post"]),
            pre_statistic=build(spec["pre"]),
            post_pre_sum_of_products=spec["post_pre_sum_of_products"],
            theta=0,
        )
    raise ValueError(kind)


def simulated_pairs() -> dict[str, tuple[Spec, Spec]]:
    """Pairs built from seeded per-user samples (sums of real-looking data)."""
    rng = np.random.default_rng(20240611)
    pairs: dict[str, tuple[Spec, Spec]] = {}

    # Revenue per user: mostly zero, log-normal when positive.
    def revenue(n: int, rate: float, scale: float) -> np.ndarray:
        paid = rng.random(n) < rate
        return np.where(paid, np.round(rng.lognormal(np.log(scale), 0.8, n), 2), 0.0)

    pairs["revenue_n500"] = (
        sample_spec(revenue(500, 0.1, 30)),
        sample_spec(revenue(520, 0.12, 30)),
    )
    pairs["revenue_n20000"] = (
        sample_spec(revenue(20000, 0.1, 30)),
        sample_spec(revenue(19850, 0.1, 33)),
    )
    pairs["sessions_poisson_n3000"] = (
        sample_spec(rng.poisson(3.0, 3000)),
        sample_spec(rng.poisson(3.15, 3010)),
    )
    pairs["normal_n5_vs_n7"] = (
        sample_spec(np.round(rng.normal(10, 2, 5), 3)),
        sample_spec(np.round(rng.normal(11, 4, 7), 3)),
    )

    # Ratio metrics: revenue per order (numerator revenue, denominator orders per user).
    def orders_and_revenue(n: int, rate: float, basket: float) -> tuple[np.ndarray, np.ndarray]:
        orders = rng.poisson(rate, n).astype(float)
        value = np.array([np.round(rng.gamma(2.0, basket / 2.0, int(k)).sum(), 2) for k in orders])
        return value, orders

    for name, n, rate, basket_b in (
        ("ratio_revenue_per_order_n2000", 2000, 0.8, 27.0),
        ("ratio_revenue_per_order_n50", 50, 1.5, 25.0),
    ):
        m_a, d_a = orders_and_revenue(n, rate, 25.0)
        m_b, d_b = orders_and_revenue(n + 7, rate, basket_b)
        pairs[name] = (ratio_from_samples(m_a, d_a), ratio_from_samples(m_b, d_b))

    # CUPED: post-period metric correlated with the pre-period value of the same metric.
    def correlated(n: int, lift: float, rho: float) -> tuple[np.ndarray, np.ndarray]:
        pre = rng.gamma(2.0, 5.0, n)
        noise = rng.gamma(2.0, 5.0, n)
        post = rho * pre + math.sqrt(1 - rho**2) * noise + lift
        return np.round(post, 3), np.round(pre, 3)

    for name, n, lift, rho in (
        ("cuped_rho0.7_n2000", 2000, 0.4, 0.7),
        ("cuped_rho0.95_n10000", 10000, 0.1, 0.95),
        ("cuped_rho0.1_n300", 300, 0.5, 0.1),
        ("cuped_rho0.5_n8", 8, 1.0, 0.5),
    ):
        post_a, pre_a = correlated(n, 0.0, rho)
        post_b, pre_b = correlated(n + 3, lift, rho)
        pairs[name] = (ra_from_samples(post_a, pre_a), ra_from_samples(post_b, pre_b))

    # CUPED on a 0/1 metric with a 0/1 pre-period covariate.
    pre_a = (rng.random(4000) < 0.2).astype(float)
    post_a = np.where(pre_a == 1, rng.random(4000) < 0.5, rng.random(4000) < 0.08).astype(float)
    pre_b = (rng.random(4100) < 0.2).astype(float)
    post_b = np.where(pre_b == 1, rng.random(4100) < 0.55, rng.random(4100) < 0.09).astype(float)
    pairs["cuped_binary_n4000"] = (
        ra_from_samples(post_a, pre_a, binary=True),
        ra_from_samples(post_b, pre_b, binary=True),
    )
    # CUPED with a constant pre-period (no one active before): theta is 0, plain test.
    post_a = np.round(rng.gamma(2.0, 5.0, 400), 3)
    post_b = np.round(rng.gamma(2.0, 5.5, 410), 3)
    pairs["cuped_constant_pre_n400"] = (
        ra_from_samples(post_a, np.zeros(400)),
        ra_from_samples(post_b, np.zeros(410)),
    )
    return pairs


def fixed_pairs() -> dict[str, tuple[Spec, Spec]]:
    """Hand-written pairs: published numbers, sizes from 2 to a million, and degenerate data."""
    return {
        # The statistics gbstats's own unit tests use (tests/frequentist/test_tests.py).
        "gbstats_unit_test_means": (
            mean_spec(3407, 1396.87, 52377.9767),
            mean_spec(3461, 2422.7, 134698.29),
        ),
        "gbstats_unit_test_means_n3000": (
            mean_spec(3000, 1396.87, 52377.9767),
            mean_spec(3461, 2422.7, 134698.29),
        ),
        "gbstats_unit_test_binomial": (proportion_spec(28, 14), proportion_spec(30, 16)),
        "gbstats_unit_test_binomial_n3000": (
            proportion_spec(3000, 1396),
            proportion_spec(3461, 2422),
        ),
        "gbstats_unit_test_cuped": (
            ra_spec(
                3000,
                mean_spec(3000, 1396.87, 52377.9767),
                mean_spec(3000, 16.87, 527.9767),
                12525.0,
            ),
            ra_spec(3461, mean_spec(3461, 2422.7, 134698.29), mean_spec(3461, 22.7, 1348.29), 3333.0),
        ),
        "conversion_n5000": (proportion_spec(5012, 506), proportion_spec(4988, 564)),
        "conversion_n1000": (proportion_spec(1000, 100), proportion_spec(1000, 120)),
        "conversion_n20000_lift20pct": (proportion_spec(20000, 2000), proportion_spec(20000, 2400)),
        "conversion_rare_n100000": (proportion_spec(100000, 100), proportion_spec(100000, 130)),
        "conversion_near_one": (proportion_spec(1000, 990), proportion_spec(1000, 982)),
        "conversion_million": (
            proportion_spec(1_000_000, 51_234),
            proportion_spec(1_000_000, 51_901),
        ),
        "conversion_tiny_n2_n3": (proportion_spec(2, 1), proportion_spec(3, 2)),
        "conversion_small_n10_n12": (proportion_spec(10, 1), proportion_spec(12, 4)),
        "mean_no_effect": (mean_from_moments(800, 12.5, 40.0), mean_from_moments(810, 12.5, 44.0)),
        "mean_large_effect": (mean_from_moments(400, 3.0, 1.0), mean_from_moments(380, 3.9, 1.5)),
        "mean_unequal_variance": (
            mean_from_moments(30, 5.0, 1.0),
            mean_from_moments(300, 5.6, 25.0),
        ),
        "mean_tiny_n2": (mean_spec(2, 3.0, 5.0), mean_spec(2, 7.0, 25.0)),
        "mean_million": (
            mean_from_moments(1_000_000, 2.0, 9.0),
            mean_from_moments(1_000_500, 2.004, 9.2),
        ),
        "mean_negative_control": (
            mean_from_moments(500, -2.0, 4.0),
            mean_from_moments(500, -1.7, 4.5),
        ),
        "mean_negative_both_worse": (
            mean_from_moments(500, -2.0, 4.0),
            mean_from_moments(500, -2.6, 4.5),
        ),
        "mean_zero_control": (mean_spec(100, 0.0, 50.0), mean_from_moments(100, 0.3, 0.6)),
        "mean_zero_variance_both": (mean_spec(100, 500.0, 2500.0), mean_spec(120, 600.0, 3000.0)),
        "mean_zero_variance_treatment": (
            mean_from_moments(100, 5.0, 2.0),
            mean_spec(120, 600.0, 3000.0),
        ),
        "mean_single_user_treatment": (mean_from_moments(100, 5.0, 2.0), mean_spec(1, 4.0, 16.0)),
        "mean_empty_treatment": (mean_from_moments(100, 5.0, 2.0), mean_spec(0, 0.0, 0.0)),
        "mean_empty_control": (mean_spec(0, 0.0, 0.0), mean_from_moments(100, 5.0, 2.0)),
        "conversion_none_in_either": (proportion_spec(500, 0), proportion_spec(500, 0)),
        "conversion_none_in_control": (proportion_spec(500, 0), proportion_spec(500, 7)),
        "conversion_all_in_treatment": (proportion_spec(50, 40), proportion_spec(50, 50)),
        "ratio_zero_denominator_control": (
            ratio_spec(10, mean_spec(10, 0.0, 0.0), mean_spec(10, 0.0, 0.0), 0.0),
            ratio_spec(10, mean_spec(10, 30.0, 200.0), mean_spec(10, 2.0, 2.0), 20.0),
        ),
    }


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


def num(x: Any) -> Any:
    """A JSON number (NaN and infinities become strings, which the tests treat specially)."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def statistic_outputs(spec: Spec) -> dict[str, Any]:
    stat = build(spec)
    out = {
        "mean": num(stat.mean),
        "variance": num(stat.variance),
        "stddev": num(stat.stddev),
        "unadjusted_mean": num(stat.unadjusted_mean),
        "has_zero_variance": bool(stat._has_zero_variance),
    }
    if spec["kind"] in ("ratio", "mean_ra"):
        out["covariance"] = num(stat.covariance)
    return out


def frequentist_outputs(test) -> dict[str, Any]:
    res = test.compute_result()
    out = {
        "expected": num(res.expected),
        "ci": [num(c) for c in res.ci],
        "p_value": num(res.p_value),
        "uplift_stddev": num(res.uplift.stddev),
        "error_message": res.error_message,
    }
    if res.error_message is None:
        out["dof"] = num(test.dof)
    return out


def bayesian_outputs(test) -> dict[str, Any]:
    try:
        res = test.compute_result()
    except ArithmeticError as exc:  # e.g. a relative prior rescaled by a zero control mean
        return {"exception": type(exc).__name__}
    return {
        "expected": num(res.expected),
        "ci": [num(c) for c in res.ci],
        "chance_to_win": num(res.chance_to_win),
        "risk": [num(r) for r in res.risk],
        "risk_type": res.risk_type,
        "uplift_stddev": num(res.uplift.stddev),
        "error_message": res.error_message,
    }


def statistics_fixture(pairs: dict[str, tuple[Spec, Spec]]) -> list[dict[str, Any]]:
    cases = []
    for name, (a, b) in pairs.items():
        for arm, spec in (("control", a), ("treatment", b)):
            cases.append({"name": f"{name}/{arm}", "statistic": spec, "gbstats": statistic_outputs(spec)})
    return cases


def ttest_fixture(pairs: dict[str, tuple[Spec, Spec]]) -> list[dict[str, Any]]:
    cases = []
    for name, (a, b) in pairs.items():
        for difference_type in ("relative", "absolute"):
            for alpha in (0.05, 0.1, 0.01):
                if alpha != 0.05 and difference_type == "absolute":
                    continue
                config = FrequentistConfig(alpha=alpha, difference_type=difference_type)
                test = TwoSidedTTest(build(a), build(b), config)
                cases.append(
                    {
                        "name": name,
                        "control": a,
                        "treatment": b,
                        "config": {"alpha": alpha, "difference_type": difference_type},
                        "gbstats": frequentist_outputs(test),
                    }
                )
    return cases


def sequential_fixture(pairs: dict[str, tuple[Spec, Spec]]) -> list[dict[str, Any]]:
    cases = []
    for name, (a, b) in pairs.items():
        settings = [
            ("relative", 0.05, 5000.0),
            ("absolute", 0.05, 5000.0),
            ("relative", 0.1, 1000.0),
            ("relative", 0.05, 100000.0),
        ]
        for difference_type, alpha, tuning in settings:
            config = SequentialConfig(alpha=alpha, difference_type=difference_type, sequential_tuning_parameter=tuning)
            test = SequentialTwoSidedTTest(build(a), build(b), config)
            out = frequentist_outputs(test)
            out.pop("dof", None)
            cases.append(
                {
                    "name": name,
                    "control": a,
                    "treatment": b,
                    "config": {
                        "alpha": alpha,
                        "difference_type": difference_type,
                        "sequential_tuning_parameter": tuning,
                    },
                    "gbstats": out,
                }
            )
    return cases


def bayesian_fixture(pairs: dict[str, tuple[Spec, Spec]]) -> list[dict[str, Any]]:
    cases = []
    settings = [
        ("relative", False, None),
        ("relative", True, None),
        ("absolute", False, None),
        ("relative", False, {"mean": 0.0, "variance": 0.3**2, "proper": True}),
        ("absolute", True, {"mean": 0.05, "variance": 0.1**2, "proper": True}),
    ]
    for name, (a, b) in pairs.items():
        for difference_type, inverse, prior in settings:
            kwargs: dict[str, Any] = {"difference_type": difference_type, "inverse": inverse}
            if prior is not None:
                kwargs["prior_effect"] = GaussianPrior(**prior)
            test = EffectBayesianABTest(build(a), build(b), EffectBayesianConfig(**kwargs))
            cases.append(
                {
                    "name": name,
                    "control": a,
                    "treatment": b,
                    "config": {
                        "difference_type": difference_type,
                        "inverse": inverse,
                        "alpha": 0.05,
                        "prior": prior,
                        "prior_type": "relative",
                    },
                    "gbstats": bayesian_outputs(test),
                }
            )
    return cases


def cuped_fixture(pairs: dict[str, tuple[Spec, Spec]]) -> list[dict[str, Any]]:
    cases = []
    for name, (a, b) in pairs.items():
        if a["kind"] != "mean_ra":
            continue
        theta = compute_theta(build(a), build(b))
        out: dict[str, Any] = {"theta": num(theta)}
        for difference_type in ("relative", "absolute"):
            config = FrequentistConfig(difference_type=difference_type)
            adjusted = TwoSidedTTest(build(a), build(b), config)
            unadjusted = TwoSidedTTest(build(a["post"]), build(b["post"]), config)
            out[difference_type] = {
                "adjusted": frequentist_outputs(adjusted),
                "unadjusted": frequentist_outputs(unadjusted),
                "adjusted_control_mean": num(adjusted.stat_a.mean),
                "adjusted_treatment_mean": num(adjusted.stat_b.mean),
                "adjusted_control_variance": num(adjusted.stat_a.variance),
                "adjusted_treatment_variance": num(adjusted.stat_b.variance),
            }
        out["bayesian_relative"] = bayesian_outputs(EffectBayesianABTest(build(a), build(b)))
        cases.append({"name": name, "control": a, "treatment": b, "gbstats": out})
    return cases


def srm_fixture() -> list[dict[str, Any]]:
    inputs = [
        ([5012, 4988], [0.5, 0.5]),
        ([5400, 4600], [0.5, 0.5]),
        ([10000, 10350], [0.5, 0.5]),
        ([100, 97, 103], [1 / 3, 1 / 3, 1 / 3]),
        ([3300, 3400, 3000, 3500], [0.25, 0.25, 0.25, 0.25]),
        ([8100, 1900], [0.8, 0.2]),
        ([900, 100, 0], [0.9, 0.1, 0.0]),
        ([1, 0], [0.5, 0.5]),
        ([0, 0], [0.5, 0.5]),
        ([1_000_000, 1_003_000], [0.5, 0.5]),
        ([25, 75], [1, 3]),
        ([120000, 100000, 110000, 90000, 105000], [0.2] * 5),
    ]
    return [
        {"users": users, "weights": weights, "gbstats": {"p_value": num(check_srm(users, weights))}}
        for users, weights in inputs
    ]


def runner_fixture() -> list[dict[str, Any]]:
    """GrowthBook's own entry point (`process_experiment_results`) with its default settings."""
    metrics = {
        "conversion": {
            "id": "conversion",
            "name": "conversion",
            "statistic_type": "mean",
            "main_metric_type": "binomial",
        },
        "crashed": {
            "id": "crashed",
            "name": "crashed",
            "statistic_type": "mean",
            "main_metric_type": "binomial",
            "inverse": True,
        },
        "revenue_per_user": {
            "id": "revenue_per_user",
            "name": "revenue_per_user",
            "statistic_type": "mean",
            "main_metric_type": "count",
        },
        "sessions_cuped": {
            "id": "sessions_cuped",
            "name": "sessions_cuped",
            "statistic_type": "mean_ra",
            "main_metric_type": "count",
            "covariate_metric_type": "count",
        },
    }
    rows = [
        {
            "variation": "control",
            "dimension": "All",
            "users": 5012,
            "count": 5012,
            "m0_main_sum": 506,
            "m0_main_sum_squares": 506,
            "m1_main_sum": 50,
            "m1_main_sum_squares": 50,
            "m2_main_sum": 15234.5,
            "m2_main_sum_squares": 1398765.25,
            "m3_main_sum": 15100.0,
            "m3_main_sum_squares": 61300.0,
            "m3_covariate_sum": 14800.0,
            "m3_covariate_sum_squares": 59100.0,
            "m3_main_covariate_sum_product": 52000.0,
        },
        {
            "variation": "treatment",
            "dimension": "All",
            "users": 4988,
            "count": 4988,
            "m0_main_sum": 564,
            "m0_main_sum_squares": 564,
            "m1_main_sum": 40,
            "m1_main_sum_squares": 40,
            "m2_main_sum": 16012.0,
            "m2_main_sum_squares": 1502210.5,
            "m3_main_sum": 15400.0,
            "m3_main_sum_squares": 63900.0,
            "m3_covariate_sum": 14750.0,
            "m3_covariate_sum_squares": 58800.0,
            "m3_main_covariate_sum_product": 52900.0,
        },
    ]
    base = {
        "var_names": ["control", "treatment"],
        "var_ids": ["control", "treatment"],
        "weights": [0.5, 0.5],
    }
    analyses = [
        {**base},
        {**base, "stats_engine": "frequentist"},
        {**base, "stats_engine": "frequentist", "sequential_testing_enabled": True},
    ]
    data = {
        "metrics": metrics,
        "analyses": analyses,
        "query_results": [{"metrics": list(metrics), "rows": rows}],
    }
    results = process_experiment_results(data)
    cases = []
    for metric_result in results:
        metric = metric_result["metric"]
        index = list(metrics).index(metric)
        arms = {}
        for row in rows:
            prefix = f"m{index}_"
            arms[row["variation"]] = {
                "users": row["users"],
                **{k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)},
            }
        for analysis, analysis_result in zip(analyses, metric_result["analyses"], strict=True):
            dimension = analysis_result["dimensions"][0]
            variation = dimension["variations"][1]
            out = {
                "srm": num(dimension["srm"]),
                "expected": num(variation["expected"]),
                "ci": [num(c) for c in variation["ci"]],
                "uplift_stddev": num(variation["uplift"]["stddev"]),
                "error_message": variation["errorMessage"],
            }
            if "pValue" in variation:
                out["p_value"] = num(variation["pValue"])
            else:
                out["chance_to_win"] = num(variation["chanceToWin"])
                out["risk"] = [num(r) for r in variation["risk"]]
            cases.append(
                {
                    "metric": metric,
                    "metric_settings": metrics[metric],
                    "analysis": {k: v for k, v in analysis.items() if k not in base},
                    "rows": arms,
                    "gbstats": out,
                }
            )
    return cases


def power_fixture() -> list[dict[str, Any]]:
    """gbstats 0.8.0 has no power module, so plans are checked against what its frequentist
    test would see: for a control arm (mean, variance, n) and a treatment arm whose mean is
    higher by the relative effect (same variance), `TwoSidedTTest`'s relative `uplift.stddev`
    is the standard error the power formula uses. The power and the minimum detectable effect
    (the effect whose expected z equals z* + z_power, solved by bisection over gbstats's own
    standard errors) are derived from it with scipy's normal distribution."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def stddev(mean: float, variance: float, n: int, effect: float) -> float:
        a = build(mean_from_moments(n, mean, variance))
        b = build(mean_from_moments(n, mean * (1 + effect), variance))
        return float(TwoSidedTTest(a, b, FrequentistConfig(difference_type="relative")).compute_result().uplift.stddev)

    inputs = [
        # (mean, variance, users per arm, effect, alpha, power, arms)
        (0.1, 0.09, 15612, 0.1, 0.05, 0.8, 2),
        (0.05, 0.0475, 2000, 0.2, 0.05, 0.8, 2),
        (12.5, 900.0, 5000, 0.05, 0.05, 0.8, 2),
        (3.2, 6.4, 800, 0.1, 0.1, 0.9, 2),
        (3.2, 6.4, 800, 0.1, 0.05, 0.8, 3),
        (0.3, 0.21, 100000, 0.01, 0.01, 0.8, 2),
    ]
    cases = []
    for mean, variance, n, effect, alpha, target, arms in inputs:
        z = float(norm.ppf(1 - alpha / (2 * (arms - 1))))
        se = stddev(mean, variance, n, effect)
        power = 1 - norm.cdf(z - effect / se) + norm.cdf(-z - effect / se)
        goal = z + float(norm.ppf(target))
        mde = brentq(lambda d: d / stddev(mean, variance, n, d) - goal, 1e-9, 100.0, xtol=1e-12)
        cases.append(
            {
                "inputs": {
                    "mean": mean,
                    "variance": variance,
                    "users_per_arm": n,
                    "effect": effect,
                    "alpha": alpha,
                    "power": target,
                    "arms": arms,
                },
                "gbstats": {"uplift_stddev": num(se), "power": num(power), "mde": num(mde)},
            }
        )
    return cases


def versions() -> dict[str, str]:
    return {
        "gbstats": importlib.metadata.version("gbstats"),
        "numpy": np.__version__,
        "scipy": importlib.metadata.version("scipy"),
        "pandas": importlib.metadata.version("pandas"),
        "python": platform.python_version(),
    }


def write(name: str, description: str, cases: list[dict[str, Any]]) -> None:
    payload = {
        "generator": GENERATOR,
        "versions": versions(),
        "description": description,
        "cases": cases,
    }
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    print(f"wrote {path.relative_to(OUT.parents[2])}: {len(cases)} cases")


def main() -> int:
    if importlib.metadata.version("gbstats") != "0.8.0":
        print("gbstats 0.8.0 is required", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    pairs = {**fixed_pairs(), **simulated_pairs()}
    write(
        "statistics",
        "gbstats.models.statistics: mean, variance, covariance of each statistic",
        statistics_fixture(pairs),
    )
    write(
        "ttest",
        "gbstats.frequentist.tests.TwoSidedTTest(stat_a, stat_b, FrequentistConfig)",
        ttest_fixture(pairs),
    )
    write(
        "sequential",
        "gbstats.frequentist.tests.SequentialTwoSidedTTest(stat_a, stat_b, SequentialConfig)",
        sequential_fixture(pairs),
    )
    write(
        "bayesian",
        "gbstats.bayesian.tests.EffectBayesianABTest(stat_a, stat_b, EffectBayesianConfig)",
        bayesian_fixture(pairs),
    )
    write(
        "cuped",
        "gbstats compute_theta and TwoSidedTTest on RegressionAdjustedStatistic vs post only",
        cuped_fixture(pairs),
    )
    write("srm", "gbstats.utils.check_srm(users, weights)", srm_fixture())
    write(
        "runner",
        "gbstats.gbstats.process_experiment_results with GrowthBook's default settings",
        runner_fixture(),
    )
    write(
        "power",
        "gbstats TwoSidedTTest relative uplift.stddev -> GrowthBook's power and MDE formulas",
        power_fixture(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
