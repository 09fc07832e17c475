"""Per-variant sufficient statistics, as GrowthBook's gbstats defines them.

SQL returns, for each variant, the number of units and the sums a metric needs (`n`, `sum`,
`sum_squares`, and for ratio and CUPED metrics the second metric's sums and the sum of
cross products); everything else is derived here. Each statistic is a frozen dataclass whose
`mean` and `variance` are properties (gbstats `models/statistics.py`, version 0.8.0), and `+`
merges two statistics of the same kind, e.g. two days or two shards of the same variant.

Variances follow gbstats exactly: a sample mean uses the n - 1 denominator, a proportion uses
p (1 - p), and a ratio of two means uses the delta method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace


def _as_count(value: object, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number: float = value
    else:
        number = _as_float(value, name)
        if number != int(number):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return int(number)


def _as_float(value: object, name: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _stddev(variance: float) -> float:
    return 0.0 if variance <= 0 else math.sqrt(variance)


@dataclass(frozen=True)
class SampleMeanStatistic:
    """A metric averaged over units: count, sum and sum of squares.

    Args:
        n: Number of units (users) in the variant.
        sum: Sum of the metric over those units.
        sum_squares: Sum of the squared metric.

    Examples:
        >>> s = SampleMeanStatistic(n=4, sum=10.0, sum_squares=30.0)  # values 1, 2, 3, 4
        >>> s.mean, round(s.variance, 12)
        (2.5, 1.666666666667)
        >>> (s + SampleMeanStatistic(1, 5.0, 25.0)).mean
        3.0
    """

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _as_count(self.n, "n"))
        object.__setattr__(self, "sum", _as_float(self.sum, "sum"))
        object.__setattr__(self, "sum_squares", _as_float(self.sum_squares, "sum_squares"))

    @property
    def mean(self) -> float:
        """Sample mean (0 when there are no units)."""
        return 0.0 if self.n == 0 else self.sum / self.n

    @property
    def variance(self) -> float:
        """Sample variance with the n - 1 denominator (0 for fewer than two units)."""
        if self.n <= 1:
            return 0.0
        return (self.sum_squares - self.sum**2 / self.n) / (self.n - 1)

    @property
    def stddev(self) -> float:
        """Square root of the variance, 0 when the variance is not positive."""
        return _stddev(self.variance)

    @property
    def unadjusted_mean(self) -> float:
        """The mean before any regression adjustment (the mean itself here)."""
        return self.mean

    @property
    def has_zero_variance(self) -> bool:
        """True when the variance is zero or negative, so no test can use it."""
        return self.variance <= 0.0

    def __add__(self, other: object) -> SampleMeanStatistic:
        if not isinstance(other, SampleMeanStatistic):
            return NotImplemented
        return SampleMeanStatistic(
            n=self.n + other.n,
            sum=self.sum + other.sum,
            sum_squares=self.sum_squares + other.sum_squares,
        )


@dataclass(frozen=True)
class ProportionStatistic:
    """A 0/1 metric: count of units and count of units with a 1.

    Args:
        n: Number of units in the variant.
        sum: Number of units whose metric is 1 (equal to the sum of squares).

    Examples:
        >>> p = ProportionStatistic(n=1000, sum=100)
        >>> p.mean, round(p.variance, 12)
        (0.1, 0.09)
    """

    n: int
    sum: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _as_count(self.n, "n"))
        object.__setattr__(self, "sum", _as_float(self.sum, "sum"))

    @property
    def sum_squares(self) -> float:
        """For a 0/1 metric the sum of squares is the sum."""
        return self.sum

    @property
    def mean(self) -> float:
        """Proportion of units with a 1 (0 when there are no units)."""
        return 0.0 if self.n == 0 else self.sum / self.n

    @property
    def variance(self) -> float:
        """Bernoulli variance p (1 - p), as gbstats uses (no n - 1 correction)."""
        return self.mean * (1 - self.mean)

    @property
    def stddev(self) -> float:
        """Square root of the variance, 0 when the variance is not positive."""
        return _stddev(self.variance)

    @property
    def unadjusted_mean(self) -> float:
        """The mean before any regression adjustment (the mean itself here)."""
        return self.mean

    @property
    def has_zero_variance(self) -> bool:
        """True when every unit has the same value."""
        return self.variance <= 0.0

    def __add__(self, other: object) -> ProportionStatistic:
        if not isinstance(other, ProportionStatistic):
            return NotImplemented
        return ProportionStatistic(n=self.n + other.n, sum=self.sum + other.sum)


BaseStatistic = SampleMeanStatistic | ProportionStatistic


def _same_kind(a: BaseStatistic, b: BaseStatistic, what: str) -> None:
    if type(a) is not type(b):
        raise TypeError(f"cannot merge a {type(a).__name__} {what} with a {type(b).__name__} one")


@dataclass(frozen=True, kw_only=True)
class RatioStatistic:
    """A ratio of two per-unit metrics (e.g. revenue per order), by the delta method.

    Args:
        m_statistic: Statistic of the numerator metric.
        d_statistic: Statistic of the denominator metric.
        m_d_sum_of_products: Sum over units of numerator times denominator.
        n: Number of units (users) the sums run over.

    Examples:
        >>> r = RatioStatistic(
        ...     m_statistic=SampleMeanStatistic(n=3, sum=6.0, sum_squares=14.0),  # 1, 2, 3
        ...     d_statistic=SampleMeanStatistic(n=3, sum=3.0, sum_squares=5.0),  # 0, 1, 2
        ...     m_d_sum_of_products=8.0,
        ...     n=3,
        ... )
        >>> r.mean, r.covariance, round(r.variance, 12)
        (2.0, 1.0, 1.0)
    """

    m_statistic: BaseStatistic
    d_statistic: BaseStatistic
    m_d_sum_of_products: float
    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _as_count(self.n, "n"))
        object.__setattr__(self, "m_d_sum_of_products", _as_float(self.m_d_sum_of_products, "m_d_sum_of_products"))

    @property
    def mean(self) -> float:
        """Sum of the numerator over sum of the denominator (0 when the latter is 0)."""
        if self.d_statistic.sum == 0:
            return 0.0
        return self.m_statistic.sum / self.d_statistic.sum

    @property
    def covariance(self) -> float:
        """Sample covariance of numerator and denominator (n - 1 denominator)."""
        if self.n <= 1:
            return 0.0
        return (self.m_d_sum_of_products - self.m_statistic.sum * self.d_statistic.sum / self.n) / (self.n - 1)

    @property
    def variance(self) -> float:
        """Per-unit variance of the ratio by the delta method (0 if undefined)."""
        d_mean = self.d_statistic.mean
        if d_mean == 0 or self.n <= 1:
            return 0.0
        m_mean = self.m_statistic.mean
        return (
            self.m_statistic.variance / d_mean**2
            - 2 * self.covariance * m_mean / d_mean**3
            + m_mean**2 * self.d_statistic.variance / d_mean**4
        )

    @property
    def stddev(self) -> float:
        """Square root of the variance, 0 when the variance is not positive."""
        return _stddev(self.variance)

    @property
    def unadjusted_mean(self) -> float:
        """The mean before any regression adjustment (the mean itself here)."""
        return self.mean

    @property
    def has_zero_variance(self) -> bool:
        """True when the delta-method variance is zero or negative."""
        return self.variance <= 0.0

    def __add__(self, other: object) -> RatioStatistic:
        if not isinstance(other, RatioStatistic):
            return NotImplemented
        _same_kind(self.m_statistic, other.m_statistic, "numerator")
        _same_kind(self.d_statistic, other.d_statistic, "denominator")
        return RatioStatistic(
            m_statistic=self.m_statistic + other.m_statistic,
            d_statistic=self.d_statistic + other.d_statistic,
            m_d_sum_of_products=self.m_d_sum_of_products + other.m_d_sum_of_products,
            n=self.n + other.n,
        )


@dataclass(frozen=True, kw_only=True)
class RegressionAdjustedStatistic:
    """A metric with its pre-period value as covariate (CUPED).

    `theta` is the regression coefficient of the post-period on the pre-period metric. It
    belongs to a comparison, not to one variant: the tests compute it from both variants
    pooled (`metrics.stats.cuped.compute_theta`) and set it on both, so callers leave it at 0.

    Args:
        post_statistic: Statistic of the metric in the experiment window.
        pre_statistic: Statistic of the same metric in the pre-period.
        post_pre_sum_of_products: Sum over units of post value times pre value.
        n: Number of units.
        theta: Adjustment coefficient; mean = post mean - theta * pre mean.

    Examples:
        >>> ra = RegressionAdjustedStatistic(
        ...     post_statistic=SampleMeanStatistic(n=3, sum=6.0, sum_squares=14.0),  # 1, 2, 3
        ...     pre_statistic=SampleMeanStatistic(n=3, sum=3.0, sum_squares=5.0),  # 0, 1, 2
        ...     post_pre_sum_of_products=8.0,
        ...     n=3,
        ...     theta=1.0,
        ... )
        >>> ra.mean, ra.unadjusted_mean, ra.variance
        (1.0, 2.0, 0.0)
    """

    post_statistic: BaseStatistic
    pre_statistic: BaseStatistic
    post_pre_sum_of_products: float
    n: int
    theta: float = field(default=0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _as_count(self.n, "n"))
        object.__setattr__(
            self,
            "post_pre_sum_of_products",
            _as_float(self.post_pre_sum_of_products, "post_pre_sum_of_products"),
        )
        object.__setattr__(self, "theta", _as_float(self.theta, "theta"))

    @property
    def mean(self) -> float:
        """Adjusted mean: post mean - theta * pre mean."""
        return self.post_statistic.mean - self.theta * self.pre_statistic.mean

    @property
    def unadjusted_mean(self) -> float:
        """The post-period mean, before adjustment."""
        return self.post_statistic.mean

    @property
    def covariance(self) -> float:
        """Sample covariance of the post and pre values (n - 1 denominator)."""
        if self.n <= 1:
            return 0.0
        return (self.post_pre_sum_of_products - self.post_statistic.sum * self.pre_statistic.sum / self.n) / (
            self.n - 1
        )

    @property
    def variance(self) -> float:
        """Variance of post - theta * pre."""
        if self.n <= 1:
            return 0.0
        return (
            self.post_statistic.variance
            + self.theta**2 * self.pre_statistic.variance
            - 2 * self.theta * self.covariance
        )

    @property
    def stddev(self) -> float:
        """Square root of the variance, 0 when the variance is not positive."""
        return _stddev(self.variance)

    @property
    def has_zero_variance(self) -> bool:
        """True when the adjusted variance is zero or negative."""
        return self.variance <= 0.0

    def with_theta(self, theta: float) -> RegressionAdjustedStatistic:
        """The same statistic with another adjustment coefficient."""
        return replace(self, theta=theta)

    def __add__(self, other: object) -> RegressionAdjustedStatistic:
        if not isinstance(other, RegressionAdjustedStatistic):
            return NotImplemented
        _same_kind(self.post_statistic, other.post_statistic, "post-period")
        _same_kind(self.pre_statistic, other.pre_statistic, "pre-period")
        return RegressionAdjustedStatistic(
            post_statistic=self.post_statistic + other.post_statistic,
            pre_statistic=self.pre_statistic + other.pre_statistic,
            post_pre_sum_of_products=self.post_pre_sum_of_products + other.post_pre_sum_of_products,
            n=self.n + other.n,
            # theta is a property of a comparison; a merged statistic keeps it only if both agree.
            theta=self.theta if self.theta == other.theta else 0.0,
        )


TestStatistic = SampleMeanStatistic | ProportionStatistic | RatioStatistic | RegressionAdjustedStatistic
