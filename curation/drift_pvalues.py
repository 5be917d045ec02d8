"""Drift tests for small references: the p-value tests Evidently picks at <= 1000 rows.

Why: distances (normed Wasserstein, Jensen-Shannon) have no sense of sample size; on 50
clean rows they are large by chance alone, so "score >= 0.1" flags most columns of clean
traffic. Evidently (0.7, `legacy/calculations/stattests/registry._get_default_stattest`)
therefore uses tests when the reference has at most 1000 rows, chosen by the number of
distinct values of reference and current together:

* numeric, more than 5 distinct values: two-sample Kolmogorov-Smirnov (`scipy.stats.ks_2samp`),
  drifted when p <= threshold;
* numeric with 3..5 distinct values, and categorical (the predicted class) with more than 2:
  chi-square of the current counts against the reference frequencies scaled to the current
  size (`scipy.stats.chisquare`), drifted when p < threshold;
* at most 2 distinct values: a two-proportion z-test (p = 1 when both windows hold the same
  single value), drifted when p < threshold.

The threshold is a p-value (Evidently's default 0.05). In memory, the functions below call
SciPy on the two samples, as Evidently does. `CurrentTests` gives the same p-values over a
current window of any size, read chunk by chunk against the (small) reference kept in
memory: per column, it counts the current values equal to each distinct reference value and
those falling between them, which is all the K-S statistic and the counts need.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

from curation.drift_verdict import CHISQUARE, KS, MAX_DISCRETE, Z_TEST, ColumnDrift, column_drift

EXACT_KS_ROWS = 10_000  # scipy's ks_2samp(method="auto") is exact up to this many rows a side


def z_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Two-proportion z-test on the (one or two) values present, in Evidently's key order.

    >>> z_pvalue(np.array([10]), np.array([7]))
    1.0
    >>> round(z_pvalue(np.array([60, 40]), np.array([45, 55])), 4)
    0.0337
    """
    ref_counts, cur_counts = np.asarray(ref_counts), np.asarray(cur_counts)
    if len(ref_counts) == 1:  # the values present: one, so the same in both windows
        return 1.0
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    p1 = float(n1 - int(ref_counts[0])) / n1  # share of rows not holding the first key
    p2 = float(n2 - int(cur_counts[0])) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def chisquare_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Chi-square of the current counts against the reference's, scaled to the current size.

    A value seen only in the current window has an expected count of 0: p = 0 (drifted).

    >>> chisquare_pvalue(np.array([10, 10, 10]), np.array([20, 20, 20]))
    1.0
    """
    ref_counts = np.asarray(ref_counts, dtype=np.float64)
    cur_counts = np.asarray(cur_counts, dtype=np.float64)
    k_norm = cur_counts.sum() / ref_counts.sum()
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.chisquare(cur_counts, ref_counts * k_norm)[1])


def counted_drift(
    name: str, ref_counts: np.ndarray, cur_counts: np.ndarray, threshold: float
) -> ColumnDrift:
    """z-test (<= 2 values) or chi-square over the values present in either window, given
    their counts in Evidently's key order (ascending values; class names sorted as text)."""
    present = (np.asarray(ref_counts) + np.asarray(cur_counts)) > 0
    r, c = np.asarray(ref_counts)[present], np.asarray(cur_counts)[present]
    if len(r) <= 2:
        return column_drift(Z_TEST, name, z_pvalue(r, c), threshold)
    return column_drift(CHISQUARE, name, chisquare_pvalue(r, c), threshold)


def pvalue_drift(name: str, ref: np.ndarray, cur: np.ndarray, threshold: float) -> ColumnDrift:
    """One numeric column of two in-memory windows, with the test Evidently picks."""
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    values = np.unique(np.concatenate([ref, cur]))
    if len(values) <= MAX_DISCRETE:
        counts = [np.searchsorted(np.sort(x), values, "right") - np.searchsorted(
            np.sort(x), values, "left") for x in (ref, cur)]  # fmt: skip
        return counted_drift(name, counts[0], counts[1], threshold)
    return column_drift(KS, name, float(stats.ks_2samp(ref, cur)[1]), threshold)


def categorical_pvalue_drift(
    name: str, ref: np.ndarray, cur: np.ndarray, classes: Sequence[str], threshold: float
) -> ColumnDrift:
    """The predicted class (codes 0..C-1 into `classes`): z-test or chi-square on counts."""
    order = sorted(range(len(classes)), key=lambda i: str(classes[i]))
    r = np.bincount(ref, minlength=len(classes))[order]
    c = np.bincount(cur, minlength=len(classes))[order]
    return counted_drift(name, r, c, threshold)


def ks_pvalue_from_d(d: float, n: int, m: int) -> float:
    """scipy's asymptotic two-sided p-value for statistic d (what ks_2samp(method="auto")
    returns when a side has more than `EXACT_KS_ROWS` rows)."""
    big, small = sorted([float(n), float(m)], reverse=True)
    en = big * small / (big + small)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))


class CurrentTests:
    """The p-value tests of a current window of any size against a small in-memory reference.

    `reference` is (n, C) float: the reference rows (n <= 1000 under Evidently's rule). The
    current window is fed with `update((k, C) chunk)` in any order; `column(j, ...)` then
    gives exactly `pvalue_drift(name, reference[:, j], <every current row>[:, j], ...)`.
    Memory: a few counters per distinct reference value, whatever the current size.
    """

    def __init__(self, reference: np.ndarray) -> None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim != 2 or len(ref) == 0:
            raise ValueError(f"reference has shape {ref.shape}: pass (rows >= 1, columns)")
        self.n, self.c, self.m = len(ref), ref.shape[1], 0
        self.values, self.ref_counts, self.equal, self.between = [], [], [], []
        self.others: list[dict[float, int] | None] = []  # current values off the reference's
        for j in range(self.c):
            values, counts = np.unique(ref[:, j], return_counts=True)
            self.values.append(values)
            self.ref_counts.append(counts)
            self.equal.append(np.zeros(len(values), np.int64))
            self.between.append(np.zeros(len(values) + 1, np.int64))  # [i]: in (v[i-1], v[i])
            self.others.append({} if len(values) <= MAX_DISCRETE else None)

    def update(self, chunk: np.ndarray) -> None:
        x = np.asarray(chunk)
        if x.ndim != 2 or x.shape[1] != self.c:
            raise ValueError(f"chunk has shape {x.shape}: expected (rows, {self.c})")
        for j in range(self.c):
            # a contiguous float64 copy of the column: exact for float32 input, and a strided
            # column makes searchsorted several times slower
            col, values = x[:, j].astype(np.float64), self.values[j]
            k = len(values)
            idx = np.searchsorted(values, col, "left")  # values[idx - 1] < col <= values[idx]
            hit = values[np.minimum(idx, k - 1)] == col  # col > max: idx == k, never a hit
            counts = np.bincount(2 * idx + hit, minlength=2 * k + 2)  # one pass for both
            self.equal[j] += counts[1 : 2 * k : 2]
            self.between[j] += counts[0::2]
            others = self.others[j]
            if others is not None and not hit.all():
                found, counts = np.unique(col[~hit], return_counts=True)
                for v, k in zip(found.tolist(), counts.tolist(), strict=True):
                    others[v] = others.get(v, 0) + k
                if len(others) + len(values) > MAX_DISCRETE:
                    self.others[j] = None  # too many values for counts: K-S decides
        self.m += len(x)

    def column(self, j: int, name: str, threshold: float) -> ColumnDrift:
        if self.m == 0:
            raise ValueError("the current window is empty: feed it with update() first")
        values, ref_counts, others = self.values[j], self.ref_counts[j], self.others[j]
        if others is not None:  # at most MAX_DISCRETE values in both windows together
            extra = np.array(sorted(others), dtype=np.float64)
            union = np.concatenate([values, extra])
            order = np.argsort(union, kind="stable")
            r = np.concatenate([ref_counts, np.zeros(len(extra), np.int64)])[order]
            c = np.concatenate([self.equal[j], [others[v] for v in extra.tolist()]])[order]
            return counted_drift(name, r, c.astype(np.int64), threshold)
        return column_drift(KS, name, self._ks_pvalue(j), threshold)

    def _ks_pvalue(self, j: int) -> float:
        equal, between = self.equal[j], self.between[j]
        if max(self.n, self.m) <= EXACT_KS_ROWS:
            # a current sample with the same counts at and between the reference values has
            # the same empirical CDF wherever the statistic is taken: same d, same exact p
            return float(stats.ks_2samp(self._reference(j), self._stand_in(j))[1])
        ref_cum = np.cumsum(self.ref_counts[j])
        lt = np.cumsum(between[:-1]) + np.concatenate([[0], np.cumsum(equal)[:-1]])
        le = lt + equal
        at = ref_cum / self.n - le / self.m  # at each reference value
        below = np.concatenate([[0], ref_cum[:-1]]) / self.n - lt / self.m  # just below it
        d = max(float(np.max(at)), float(np.max(below)), -float(np.min(at)), -float(np.min(below)))
        return ks_pvalue_from_d(max(d, 0.0), self.n, self.m)

    def _reference(self, j: int) -> np.ndarray:
        return np.repeat(self.values[j], self.ref_counts[j])

    def _stand_in(self, j: int) -> np.ndarray:
        values, equal, between = self.values[j], self.equal[j], self.between[j]
        below = np.concatenate([[np.nextafter(values[0], -math.inf)],
                                np.nextafter(values, math.inf)])  # fmt: skip
        points = np.empty(2 * len(values) + 1)
        counts = np.empty(2 * len(values) + 1, np.int64)
        points[0::2], counts[0::2] = below, between  # one stand-in per gap: right after v[i-1]
        points[1::2], counts[1::2] = values, equal
        return np.repeat(points, counts)
