"""Statistics of experiment readouts, following GrowthBook's gbstats engine (version 0.8.0).

SQL computes per-variant sufficient statistics (`n`, `sum`, `sum_squares`, and for ratio and
CUPED metrics the second metric's sums and the sum of cross products); this package does the
inference in pure Python, with no scipy at run time:

- `statistics`: `SampleMeanStatistic`, `ProportionStatistic`, `RatioStatistic`,
  `RegressionAdjustedStatistic` (frozen; `+` merges).
- `ttest`: `two_sided_ttest` (relative lift by default, Welch-Satterthwaite t).
- `sequential`: `sequential_two_sided_ttest` (always-valid intervals and p-values).
- `bayesian`: `bayesian_ab_test` (chance to win, risk, credible interval).
- `cuped`: `compute_theta`, `regression_adjust`, `cuped_result` (variance reduction).
- `srm`: `check_srm`. `correction`: `holm_bonferroni`, `benjamini_hochberg`.
- `comparison`: `compare_variant`, one readout row in one call. `verdict`: one-line summary.
- `results`: the result dataclasses and the error codes degenerate inputs produce.
"""

from __future__ import annotations

from metrics.stats.bayesian import GaussianPrior, bayesian_ab_test
from metrics.stats.comparison import compare_variant
from metrics.stats.correction import adjust_p_values, benjamini_hochberg, holm_bonferroni
from metrics.stats.cuped import compute_theta, cuped_result, regression_adjust
from metrics.stats.results import (
    NO_UNITS_IN_VARIATION,
    TOO_FEW_VARIANTS,
    ZERO_NEGATIVE_BASELINE_VARIATION,
    ZERO_NEGATIVE_VARIANCE,
    BayesianResult,
    CupedResult,
    FrequentistResult,
    SrmResult,
    VariantComparison,
)
from metrics.stats.sequential import sequential_two_sided_ttest
from metrics.stats.srm import check_srm
from metrics.stats.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    TestStatistic,
)
from metrics.stats.ttest import two_sided_ttest
from metrics.stats.verdict import verdict

__all__ = [
    "NO_UNITS_IN_VARIATION",
    "TOO_FEW_VARIANTS",
    "ZERO_NEGATIVE_BASELINE_VARIATION",
    "ZERO_NEGATIVE_VARIANCE",
    "BayesianResult",
    "CupedResult",
    "FrequentistResult",
    "GaussianPrior",
    "ProportionStatistic",
    "RatioStatistic",
    "RegressionAdjustedStatistic",
    "SampleMeanStatistic",
    "SrmResult",
    "TestStatistic",
    "VariantComparison",
    "adjust_p_values",
    "bayesian_ab_test",
    "benjamini_hochberg",
    "check_srm",
    "compare_variant",
    "compute_theta",
    "cuped_result",
    "holm_bonferroni",
    "regression_adjust",
    "sequential_two_sided_ttest",
    "two_sided_ttest",
    "verdict",
]
