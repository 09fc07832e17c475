"""The few probability distributions experiment statistics need, in pure Python.

scipy is a test-only dependency of northstar, so the engine carries its own normal, Student t
and chi-square functions. They are built on `math.erfc`, `math.lgamma` and
`statistics.NormalDist` plus the classic continued fractions for the incomplete beta and gamma
functions (Numerical Recipes, 3rd ed., sections 6.2 and 6.4), and agree with scipy to about
1e-12 over the ranges experiments produce (see `tests/metrics/stats/test_distributions.py`).
"""

from __future__ import annotations

import math
from statistics import NormalDist

_STANDARD_NORMAL = NormalDist()
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
_EPS = 1e-16
_TINY = 1e-300
_MAX_ITERATIONS = 100_000
_LARGE_DF = 1000.0
_HUGE_DF = 1e10


def normal_pdf(x: float) -> float:
    """Density of the standard normal distribution.

    Args:
        x: The point.

    Returns:
        phi(x).

    Examples:
        >>> round(normal_pdf(0.0), 12)
        0.398942280401
    """
    return math.exp(-0.5 * x * x) / _SQRT2PI


def normal_cdf(x: float) -> float:
    """Lower tail of the standard normal distribution, accurate far into the left tail.

    Args:
        x: The point.

    Returns:
        P(Z <= x).

    Examples:
        >>> round(normal_cdf(1.959963984540054), 12)
        0.975
    """
    return 0.5 * math.erfc(-x / _SQRT2)


def normal_sf(x: float) -> float:
    """Upper tail of the standard normal distribution, accurate far into the right tail.

    Args:
        x: The point.

    Returns:
        P(Z > x).

    Examples:
        >>> normal_sf(0.0)
        0.5
    """
    return 0.5 * math.erfc(x / _SQRT2)


def normal_ppf(p: float) -> float:
    """Quantile of the standard normal distribution.

    Args:
        p: A probability in (0, 1).

    Returns:
        z with P(Z <= z) = p.

    Raises:
        ValueError: If p is not strictly between 0 and 1.

    Examples:
        >>> round(normal_ppf(0.975), 9)
        1.959963985
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"normal_ppf needs 0 < p < 1, got {p}")
    return _STANDARD_NORMAL.inv_cdf(p)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function, by the modified Lentz method."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def _stirling_correction(a: float) -> float:
    """lgamma(a) less its Stirling approximation (a - 1/2) log a - a + log(2 pi) / 2, a >= 100."""
    inv = 1.0 / a
    inv2 = inv * inv
    return inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0))


def _log_beta_inverse(a: float, b: float) -> float:
    """log(Gamma(a + b) / (Gamma(a) Gamma(b))), without cancellation when one shape is large.

    With Welch degrees of freedom in the millions, lgamma(a + b) - lgamma(a) subtracts two
    numbers near 1e7 and would lose eight digits; Stirling's series for the ratio does not.
    """
    big, small = (a, b) if a >= b else (b, a)
    if big < 100.0:
        return math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    total = big + small
    log_ratio = (
        (big - 0.5) * math.log1p(small / big)
        + small * math.log(total)
        - small
        + _stirling_correction(total)
        - _stirling_correction(big)
    )
    return log_ratio - math.lgamma(small)


def regularized_beta(a: float, b: float, x: float, y: float | None = None) -> float:
    """Regularized incomplete beta function I_x(a, b).

    Args:
        a: First shape parameter, > 0.
        b: Second shape parameter, > 0.
        x: The point in [0, 1].
        y: 1 - x when the caller can compute it without cancellation (it is then used in
            place of 1 - x, which keeps precision when x is close to 1).

    Returns:
        I_x(a, b).

    Examples:
        >>> round(regularized_beta(2.0, 3.0, 0.4), 12)  # 1 - 0.6**4 - 4*0.4*0.6**3
        0.5248
    """
    if y is None:
        y = 1.0 - x
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    if x < (a + 1.0) / (a + b + 2.0):
        return _beta_by_fraction(a, b, x, y)
    return 1.0 - _beta_by_fraction(b, a, y, x)


def _beta_by_fraction(a: float, b: float, x: float, y: float) -> float:
    """I_x(a, b) from the continued fraction in x, whichever side of the mode x is on."""
    log_x = math.log(x) if x < 0.5 else math.log1p(-y)
    log_y = math.log(y) if y < 0.5 else math.log1p(-x)
    log_front = _log_beta_inverse(a, b) + a * log_x + b * log_y
    return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a


def student_t_sf(t: float, df: float) -> float:
    """Upper tail of Student's t distribution with (possibly fractional) degrees of freedom.

    Args:
        t: The point.
        df: Degrees of freedom, > 0 (Welch-Satterthwaite gives fractional ones); infinity
            gives the normal distribution.

    Returns:
        P(T > t).

    Examples:
        >>> round(student_t_sf(2.0, 10.0), 12)
        0.036694017385
        >>> student_t_sf(0.0, 3.5)
        0.5
    """
    if math.isinf(df):
        return normal_sf(t)
    if t == 0.0:
        return 0.5
    t2 = t * t
    if df > _HUGE_DF:
        # First term of the expansion in 1/df; the next is O(t^7 / df^2).
        return normal_sf(t) + normal_pdf(t) * (t2 * t + t) / (4.0 * df)
    # P(|T| > |t|) = I_x(df/2, 1/2) with x = df / (df + t^2); 1 - x is formed directly.
    x = df / (df + t2)
    y = t2 / (df + t2)
    two_sided = None
    if df > _LARGE_DF and t2 < 16.0:
        # With df/2 large, x sits so close to 1 that the fraction in x is ill-conditioned
        # (about 1e-9 relative at df = 1e6) unless the tail is small; away from the tail the
        # fraction for P(|T| < |t|) = I_y(1/2, df/2) is the accurate one.
        inside = _beta_by_fraction(0.5, 0.5 * df, y, x)
        if inside < 0.999:
            two_sided = 1.0 - inside
    if two_sided is None:
        two_sided = regularized_beta(0.5 * df, 0.5, x, y)
    return 0.5 * two_sided if t > 0.0 else 1.0 - 0.5 * two_sided


def student_t_cdf(t: float, df: float) -> float:
    """Lower tail of Student's t distribution.

    Args:
        t: The point.
        df: Degrees of freedom, > 0.

    Returns:
        P(T <= t).

    Examples:
        >>> round(student_t_cdf(-2.0, 10.0), 12)
        0.036694017385
    """
    return student_t_sf(-t, df)


def student_t_pdf(t: float, df: float) -> float:
    """Density of Student's t distribution.

    Args:
        t: The point.
        df: Degrees of freedom, > 0.

    Returns:
        The density at t.

    Examples:
        >>> round(student_t_pdf(0.0, 1.0), 12)  # Cauchy: 1 / pi
        0.318309886184
    """
    if math.isinf(df):
        return normal_pdf(t)
    # Gamma((df + 1) / 2) / (Gamma(df / 2) sqrt(df pi)), with Gamma(1/2) = sqrt(pi).
    log_norm = _log_beta_inverse(0.5 * df, 0.5) - 0.5 * math.log(df)
    return math.exp(log_norm - 0.5 * (df + 1.0) * math.log1p(t * t / df))


def student_t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t distribution.

    Newton's method on the upper tail from a Cornish-Fisher start, kept inside a bracket that
    bisection falls back on; the tail is convex there, so the iteration converges monotonically.

    Args:
        p: A probability in (0, 1).
        df: Degrees of freedom, > 0.

    Returns:
        t with P(T <= t) = p.

    Raises:
        ValueError: If p is not strictly between 0 and 1 or df is not positive.

    Examples:
        >>> round(student_t_ppf(0.975, 10.0), 9)
        2.228138852
        >>> round(student_t_ppf(0.025, 10.0), 9)
        -2.228138852
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"student_t_ppf needs 0 < p < 1, got {p}")
    if not df > 0.0:
        raise ValueError(f"student_t_ppf needs df > 0, got {df}")
    if math.isinf(df):
        return normal_ppf(p)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -_student_t_upper_quantile(p, df)
    return _student_t_upper_quantile(1.0 - p, df)


def _student_t_upper_quantile(tail: float, df: float) -> float:
    """The t > 0 with P(T > t) = tail, for 0 < tail < 0.5."""
    if df == 1.0:
        return 1.0 / math.tan(math.pi * tail)
    if df == 2.0:
        return (1.0 - 2.0 * tail) * math.sqrt(2.0 / (4.0 * tail * (1.0 - tail)))
    z = -normal_ppf(tail)
    guess = z + (z**3 + z) / (4.0 * df) + (5.0 * z**5 + 16.0 * z**3 + 3.0 * z) / (96.0 * df**2)
    lo, hi = 0.0, max(guess, 1.0)
    while student_t_sf(hi, df) > tail:
        lo, hi = hi, 2.0 * hi
    x = min(max(guess, lo), hi)
    for _ in range(200):
        excess = student_t_sf(x, df) - tail
        if excess > 0.0:
            lo = x
        else:
            hi = x
        density = student_t_pdf(x, df)
        step = excess / density if density > 0.0 else math.inf
        candidate = x + step
        if not lo < candidate < hi:
            candidate = 0.5 * (lo + hi)
        if abs(candidate - x) <= 1e-15 * max(1.0, abs(x)):
            return candidate
        x = candidate
    return x


def _gamma_series(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) by its series (for x < a + 1)."""
    term = 1.0 / a
    total = term
    ap = a
    for _ in range(_MAX_ITERATIONS):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            return total * math.exp(-x + a * math.log(x) - math.lgamma(a))
    raise ArithmeticError(f"incomplete gamma series did not converge for a={a}, x={x}")


def _gamma_continued_fraction(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) by its continued fraction (for x >= a + 1)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS + 1):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h
    raise ArithmeticError(f"incomplete gamma fraction did not converge for a={a}, x={x}")


def chi2_sf(x: float, df: float) -> float:
    """Upper tail of the chi-square distribution.

    Args:
        x: The statistic, >= 0.
        df: Degrees of freedom, > 0.

    Returns:
        P(X > x).

    Examples:
        >>> round(chi2_sf(3.841458820694124, 1), 12)
        0.05
        >>> round(chi2_sf(5.991464547107979, 2), 12)
        0.05
    """
    if not df > 0.0:
        raise ValueError(f"chi2_sf needs df > 0, got {df}")
    if x <= 0.0:
        return 1.0
    if df == 1.0:
        return math.erfc(math.sqrt(0.5 * x))
    if df == 2.0:
        return math.exp(-0.5 * x)
    a = 0.5 * df
    half = 0.5 * x
    if half < a + 1.0:
        return 1.0 - _gamma_series(a, half)
    return _gamma_continued_fraction(a, half)
