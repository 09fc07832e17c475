"""Read the gbstats fixtures (tests/fixtures/gbstats/, made by scripts/gbstats_fixtures/)."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from metrics.stats.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    TestStatistic,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gbstats"
GBSTATS_VERSION = "0.8.0"

# Every number must agree with gbstats to a relative 1e-6; values near zero (p-values that
# underflow, lifts of exactly 0) are compared absolutely.
REL_TOL = 1e-6
ABS_TOL = 1e-12


@cache
def load(name: str) -> dict[str, Any]:
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    assert payload["versions"]["gbstats"] == GBSTATS_VERSION
    return payload


def cases(name: str) -> list[dict[str, Any]]:
    return load(name)["cases"]


def case_id(case: dict[str, Any]) -> str:
    config = case.get("config") or {}
    return "-".join([case.get("name", "case"), *(f"{v}" for v in config.values() if v is not None)])


def build(spec: dict[str, Any]) -> TestStatistic:
    kind = spec["kind"]
    if kind == "mean":
        return SampleMeanStatistic(spec["n"], spec["sum"], spec["sum_squares"])
    if kind == "proportion":
        return ProportionStatistic(spec["n"], spec["sum"])
    if kind == "ratio":
        return RatioStatistic(
            m_statistic=build(spec["m"]),  # type: ignore[arg-type]
            d_statistic=build(spec["d"]),  # type: ignore[arg-type]
            m_d_sum_of_products=spec["m_d_sum_of_products"],
            n=spec["n"],
        )
    if kind == "mean_ra":
        return RegressionAdjustedStatistic(
            post_statistic=build(spec["post"]),  # type: ignore[arg-type]
            pre_statistic=build(spec["pre"]),  # type: ignore[arg-type]
            post_pre_sum_of_products=spec["post_pre_sum_of_products"],
            n=spec["n"],
        )
    raise ValueError(kind)


def deviation(ours: float, theirs: float) -> float:
    """The smaller of the absolute and relative differences."""
    diff = abs(ours - theirs)
    return min(diff, diff / abs(theirs)) if theirs else diff


def close(ours: float, theirs: float, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    return math.isclose(ours, theirs, rel_tol=rel_tol, abs_tol=abs_tol)


def assert_close(ours: float, theirs: float, what: str, **tol: float) -> None:
    assert close(ours, theirs, **tol), f"{what}: ours {ours!r} vs gbstats {theirs!r}"
