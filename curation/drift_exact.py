"""The exact drift statistics of one column, in NumPy (the rules are in `curation.drift`).

Exact at any size that fits in memory, and linear time for the usual case of columns with
few distinct values (pixels at 17 or 256 grey levels, constant borders): those are counted,
not sorted. `scipy` gives the same values (the unit tests check it), much slower.
"""

from __future__ import annotations

import numpy as np

from curation.drift_sketch import wasserstein_atoms
from curation.drift_verdict import (
    JENSEN_SHANNON,
    MAX_DISCRETE,
    MIN_STD,
    WASSERSTEIN,
    ColumnDrift,
    column_drift,
)


def wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two *sorted* 1-D samples.

    The integral of |F_u - F_v| over the merged support. The merge is a stable argsort of the
    two sorted runs (linear for timsort); F_u - F_v then steps by +1/n at a value of u and by
    -1/m at a value of v. Same value as `scipy.stats.wasserstein_distance`.

    >>> wasserstein_sorted(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    1.0
    """
    n, m = len(u), len(v)
    merged = np.concatenate([u, v])
    order = np.argsort(merged, kind="stable")
    values = merged[order].astype(np.float64, copy=False)
    steps = np.where(order[:-1] < n, 1.0 / n, -1.0 / m)
    return float(np.abs(np.cumsum(steps)) @ np.diff(values))


def jensen_shannon(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log, sqrt of the divergence) between two histograms.

    Same value as `scipy.spatial.distance.jensenshannon(p, q)`; between 0 and sqrt(ln 2).

    >>> round(jensen_shannon(np.array([1, 0]), np.array([0, 1])), 4)
    0.8326
    """
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(np.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def _n_distinct(sorted_values: np.ndarray) -> int:
    return int(np.count_nonzero(sorted_values[1:] != sorted_values[:-1])) + int(
        len(sorted_values) > 0
    )


def _counts(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_values, values, "right") - np.searchsorted(
        sorted_values, values, "left"
    )


_SAMPLE = 4096  # rows looked at to guess a column's distinct values
_MAX_GUESS = 256  # more distinct values than this: sort instead
_EQUALITY_PASSES = 24


def _count_known(x: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """Occurrences of each of `values` (sorted, distinct) in x; None if x holds others."""
    if len(values) <= _EQUALITY_PASSES:  # a few vectorised comparisons beat a binary search
        counts = np.array([np.count_nonzero(x == v) for v in values], dtype=np.int64)
        return counts if counts.sum() == len(x) else None
    idx = np.searchsorted(values, x)
    np.minimum(idx, len(values) - 1, out=idx)
    return np.bincount(idx, minlength=len(values)) if np.array_equal(values[idx], x) else None


def _value_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """(values, ref counts, cur counts) when both columns take few distinct values, else None.

    The values are guessed from a sample, then every row is counted against them; values the
    sample missed are added while there are few. Linear time, and exact: a column with too
    many distinct values gives None and the caller sorts it.
    """
    values = np.unique(np.concatenate([ref[:_SAMPLE], cur[:_SAMPLE]]))
    for _ in range(3):
        if len(values) > _MAX_GUESS:
            return None
        counts = [_count_known(x, values) for x in (ref, cur)]
        if counts[0] is not None and counts[1] is not None:
            return (values.astype(np.float64), *counts)
        missed = [
            x[~np.isin(x, values)] for x, c in zip((ref, cur), counts, strict=True) if c is None
        ]
        values = np.union1d(values, np.unique(np.concatenate(missed)))
    return None


def _weighted_std(values: np.ndarray, counts: np.ndarray) -> float:
    n = counts.sum()
    mean = (counts @ values) / n
    return float(np.sqrt(counts @ np.square(values - mean) / n))


def numeric_drift(name: str, ref: np.ndarray, cur: np.ndarray, threshold: float) -> ColumnDrift:
    """Drift of one numeric column, with the method Evidently would choose (see module doc).

    Columns with few distinct values (pixels at 17 grey levels, a constant border) are counted
    in linear time; others are sorted (keeping the input dtype: float32 sorts twice as fast,
    and the order is exact). Either way the score is exact, computed in float64.
    """
    ref, cur = np.ascontiguousarray(ref), np.ascontiguousarray(cur)  # one strided pass
    counted = _value_counts(ref, cur) if len(ref) and len(cur) else None
    if counted is not None:
        values, r_counts, c_counts = counted
        present = (r_counts + c_counts) > 0
        if present.sum() <= MAX_DISCRETE:
            score = jensen_shannon(r_counts[present], c_counts[present])
            return column_drift(JENSEN_SHANNON, name, score, threshold)
        w1 = wasserstein_atoms(values, r_counts, values, c_counts)
        std = _weighted_std(values, r_counts)
        return column_drift(WASSERSTEIN, name, w1 / max(std, MIN_STD), threshold)
    r, c = np.sort(ref), np.sort(cur)
    if _n_distinct(r) <= MAX_DISCRETE and _n_distinct(c) <= MAX_DISCRETE:
        values = np.union1d(np.unique(r), np.unique(c))
    else:
        values = None
    if values is not None and len(values) <= MAX_DISCRETE:
        score = jensen_shannon(_counts(r, values), _counts(c, values))
        return column_drift(JENSEN_SHANNON, name, score, threshold)
    score = wasserstein_sorted(r, c) / max(float(np.std(r, dtype=np.float64)), MIN_STD)
    return column_drift(WASSERSTEIN, name, score, threshold)


def categorical_drift(
    name: str, ref: np.ndarray, cur: np.ndarray, n_categories: int, threshold: float
) -> ColumnDrift:
    """Jensen-Shannon distance between category frequencies (codes 0..n_categories-1)."""
    r_counts = np.bincount(ref, minlength=n_categories)
    c_counts = np.bincount(cur, minlength=n_categories)
    return column_drift(JENSEN_SHANNON, name, jensen_shannon(r_counts, c_counts), threshold)
