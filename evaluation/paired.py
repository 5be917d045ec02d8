"""Exact paired tests for two models scored on the same rows (the gate's evidence).

Why paired and exact: both models answer the same eval rows, so only the rows where exactly
one of them is right (the discordant pairs) say anything about which is better. Under "the
two are equally good", each discordant pair favours the challenger with probability 1/2: the
count is binomial, and its exact tail is the p-value (McNemar's exact test). Eval sets and
slices are small (tens of discordant pairs), where the normal approximation (a z score) is
off by a factor of two in the tail; the exact sum costs nothing.

`b` = rows only the challenger gets right, `c` = rows only the champion gets right.
"""

from __future__ import annotations

import math


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space.

    >>> binom_sf(10, 12, 0.5)  # (1 + 12 + 66) / 4096
    0.019287109375
    >>> binom_sf(0, 5, 0.3), binom_sf(6, 5, 0.3)
    (1.0, 0.0)
    """
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"binom_sf(k={k}, n={n}, p={p}): n must be >= 0 and p in [0, 1]")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    if p == 0.5:  # the McNemar case: an exact integer ratio, correctly rounded
        return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n
    lp, lq = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def mcnemar_better(b: int, c: int) -> float:
    """One-sided exact McNemar p-value for "the challenger is better": P(X >= b), X ~ Bin(b+c, 1/2).

    No discordant pair (a tie in every row) is no evidence: p = 1. Exact integer arithmetic
    (a sum of binomial coefficients over 2^n, rounded once): the benchmark compares these
    p-values with alpha, and the gate's and the benchmark's must be the same number.

    >>> mcnemar_better(10, 2), mcnemar_better(1, 1), mcnemar_better(0, 0)
    (0.019287109375, 0.75, 1.0)
    """
    _counts(b, c)
    n = b + c
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(b, n + 1)) / 2**n


def worse_than_margin(b: int, c: int, n: int, margin: float) -> float:
    """One-sided p-value for "the challenger's accuracy is lower than the champion's by more
    than `margin`" on `n` paired rows: McNemar's exact test shifted by the margin.

    Conditional on the m = b + c discordant pairs, an accuracy drop of exactly `margin`
    (Δ = (c - b) / n) means each discordant pair favours the champion with probability
    q = 1/2 + n * margin / (2 m); the p-value is P(X >= c), X ~ Bin(m, q). With margin 0 it
    is the plain exact McNemar test the other way. When q >= 1 even every discordant pair
    going to the champion would not exceed the margin: p = 1 (no evidence of harm).

    >>> worse_than_margin(2, 10, 200, 0.0) == mcnemar_better(10, 2)
    True
    >>> round(worse_than_margin(2, 10, 200, 0.01), 6), worse_than_margin(2, 10, 200, 0.06)
    (0.067133, 1.0)
    """
    _counts(b, c)
    if n < b + c:
        raise ValueError(f"n = {n} rows but {b + c} discordant pairs: n counts every paired row")
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin = {margin}: use a share in [0, 1), e.g. 0.02")
    m = b + c
    if m == 0:
        return 1.0
    q = 0.5 + n * margin / (2 * m)
    if q >= 1.0:
        return 1.0
    return binom_sf(c, m, q)


def _counts(b: int, c: int) -> None:
    for name, v in (("b", b), ("c", c)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} = {v!r}: pass a count of discordant rows (an int >= 0)")
