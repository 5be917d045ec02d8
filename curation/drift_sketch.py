"""Bounded-memory summaries of numeric columns, for drift over windows too big to hold.

A `HistogramSketch` sees a block of columns chunk by chunk and keeps, per column, `bins`
equal-width bins holding the count, the sum and the sum of squares of the values that fell
in each. A column's grid starts at its first chunk's range and doubles its width when a
later value falls outside (adjacent bins merge; nothing is lost but resolution). All
columns of a chunk are binned by three `np.bincount` calls, whatever their number.

A window then becomes atoms (position = the mean of a non-empty bin, mass = its count), and
the Wasserstein-1 distance between two atom sets is computed exactly. When every bin holds
one distinct value (pixels at 17 grey levels, constant borders, small integer codes: any
column whose distinct values are further apart than a bin width) the atoms *are* the data
and the distance is exact. Otherwise moving each value to its bin's mean moves mass by at
most `error_bound` = sum over bins of sqrt(count * within-bin sum of squares) / n (Cauchy-
Schwarz), which is at most half a bin width. The standard deviation is exact (from the
per-bin sums). Memory: 3 x `bins` float64 per column, whatever the number of rows.

>>> s = HistogramSketch(1, bins=8)
>>> s.update(np.array([[0.0], [0.5], [0.5]], np.float32)); s.update(np.array([[1.0]]))
>>> s.atoms(0)
(array([0. , 0.5, 1. ]), array([1., 2., 1.]))
>>> round(s.std(0), 4), s.error_bound(0), s.distinct(0)
(0.3536, 0.0, 3)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BINS = 16_384
_PURE = 1e-12  # within-bin sum of squares below this share of the bin's sum x^2: one value


class HistogramSketch:
    """Per-column histograms (count, sum, sum of squares) of an (N, C) stream."""

    def __init__(self, n_columns: int, bins: int = BINS) -> None:
        if n_columns < 1 or bins < 2:
            raise ValueError(f"n_columns = {n_columns}, bins = {bins}: need >= 1 and >= 2")
        self.c, self.bins, self.n = n_columns, bins, 0
        self.lo = np.zeros(n_columns)
        self.width = np.ones(n_columns)
        self.counts = np.zeros((n_columns, bins))
        self.sums = np.zeros((n_columns, bins))
        self.sumsq = np.zeros((n_columns, bins))
        self._offsets = np.arange(n_columns, dtype=np.int64) * bins

    def update(self, x: np.ndarray) -> None:
        """Add a chunk: an (k, C) array (float32 or float64), rows in any order."""
        x = np.asarray(x)
        if x.dtype != np.float32:
            x = x.astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.c:
            raise ValueError(f"chunk has shape {x.shape}: expected (rows, {self.c})")
        if len(x) == 0:
            return
        xmin, xmax = x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)
        if self.n == 0:
            span = xmax - xmin
            tiny = np.maximum(np.abs(xmin), 1.0) * 2.0**-20
            self.lo = xmin.copy()
            self.width = np.where(span > 0, span / self.bins * (1 + 1e-9), tiny)
        for j in np.nonzero((xmin < self.lo) | (xmax >= self.lo + self.bins * self.width))[0]:
            self._grow(int(j), float(xmin[j]), float(xmax[j]))
        # the bin index may be off by one at a bin edge (float32 arithmetic): harmless, since
        # bins keep the exact sums of the values they got and the bound uses those
        scaled = (x - self.lo.astype(x.dtype)) * (1.0 / self.width).astype(x.dtype)
        np.clip(scaled, 0, self.bins - 1, out=scaled)
        idx = scaled.astype(np.intp)
        idx += self._offsets
        flat, size = idx.ravel(), self.c * self.bins
        self.counts += np.bincount(flat, minlength=size).reshape(self.c, self.bins)
        values = x.astype(np.float64).ravel()
        self.sums += np.bincount(flat, weights=values, minlength=size).reshape(self.c, self.bins)
        np.multiply(values, values, out=values)
        self.sumsq += np.bincount(flat, weights=values, minlength=size).reshape(self.c, self.bins)
        self.n += len(x)

    def _grow(self, j: int, xmin: float, xmax: float) -> None:
        """Widen column j's grid by a power of two so that [xmin, xmax] fits; merge bins."""
        lo, width, bins = self.lo[j], self.width[j], self.bins
        hi = lo + bins * width
        shift = max(0, math.ceil((lo - xmin) / width))  # new lo = lo - shift * width
        needed = shift + math.floor((max(xmax, hi) - lo) / width) + 1
        factor = 2 ** max(1, math.ceil(math.log2(needed / bins)))
        new_idx = (np.arange(bins) + shift) // factor
        for stat in (self.counts, self.sums, self.sumsq):
            stat[j] = np.bincount(new_idx, weights=stat[j], minlength=bins)[:bins]
        self.lo[j] = lo - shift * width
        self.width[j] = width * factor

    def atoms(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions ascending, masses) of column j: the mean of each non-empty bin."""
        keep = self.counts[j] > 0
        masses = self.counts[j][keep]
        return self.sums[j][keep] / masses, masses

    def _within(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        keep = self.counts[j] > 0
        c, s, q = self.counts[j][keep], self.sums[j][keep], self.sumsq[j][keep]
        ss = np.maximum(q - s * s / c, 0.0)
        return c, np.where(ss <= _PURE * q, 0.0, ss)

    def error_bound(self, j: int) -> float:
        """Largest possible |W1(atoms) - W1(values)| contributed by this window's column j."""
        c, ss = self._within(j)
        return float(np.sqrt(c * ss).sum() / self.n) if self.n else 0.0

    def distinct(self, j: int) -> int | None:
        """Number of distinct values of column j when every bin holds one, else None."""
        c, ss = self._within(j)
        return None if (ss > 0).any() else len(c)

    def mean(self, j: int) -> float:
        return float(self.sums[j].sum() / self.n) if self.n else 0.0

    def std(self, j: int) -> float:
        """Population standard deviation (ddof = 0), as Evidently normalises by."""
        if self.n == 0:
            return 0.0
        c, ss = self._within(j)
        pos, _ = self.atoms(j)
        between = c @ np.square(pos - self.mean(j))
        return math.sqrt((ss.sum() + between) / self.n)


def wasserstein_atoms(
    u_pos: np.ndarray, u_mass: np.ndarray, v_pos: np.ndarray, v_mass: np.ndarray
) -> float:
    """Exact Wasserstein-1 distance between two weighted point sets (positions ascending).

    >>> wasserstein_atoms(np.array([0.0, 1.0]), np.array([1, 1]), np.array([1.0, 2.0]), np.array([1, 1]))
    1.0
    """
    pos = np.concatenate([u_pos, v_pos])
    mass = np.concatenate([u_mass / u_mass.sum(), -v_mass / v_mass.sum()])
    order = np.argsort(pos, kind="stable")
    pos, mass = pos[order], mass[order]
    return float(np.abs(np.cumsum(mass)[:-1]) @ np.diff(pos))


class WindowSketch:
    """One window of the prediction log: feature and confidence histograms, class counts.

    With `outputs=False` only the features are summarised (batches need no `pred` nor
    `confidence`): for when the model outputs to compare come from elsewhere. `keep_rows`
    keeps the window's rows themselves (features, then confidence) while it has at most that
    many (`rows()`), for the p-value tests of small references. `tests` (an object with
    `update((k, C) array)`, e.g. `curation.drift_pvalues.CurrentTests`) is fed the same rows;
    `sketch=False` then skips the feature histograms nobody will read.
    """

    def __init__(
        self,
        classes: Sequence[str],
        window: str,
        bins: int = BINS,
        outputs: bool = True,
        keep_rows: int = 0,
        tests=None,
        sketch: bool = True,
    ) -> None:
        self.classes = pa.array([str(c) for c in classes], pa.string())
        if len(self.classes) < 1:
            raise ValueError("classes is empty: pass the task's class names")
        self.window, self.bins, self.outputs = window, bins, outputs
        self.n, self.n_features = 0, None
        self.features: HistogramSketch | None = None
        self.confidence = HistogramSketch(1, bins)
        self.pred_counts = np.zeros(len(self.classes), np.int64)
        self.keep_rows, self.tests, self.sketch = keep_rows, tests, sketch
        self._kept: list[np.ndarray] | None = [] if keep_rows > 0 else None

    def rows(self) -> np.ndarray | None:
        """The window's rows, (n, F) or (n, F + 1) with the confidence last when the batches
        carry it; None when the window had more than `keep_rows` rows (or none were kept)."""
        if self._kept is None or not self._kept:
            return None
        return np.concatenate(self._kept)

    def consume(self, batches: Iterable[pa.RecordBatch | pa.Table]) -> WindowSketch:
        for batch in batches:
            self.update(batch)
        return self

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        k = batch.num_rows
        if k == 0:
            return
        needed = {"features", "pred", "confidence"} if self.outputs else {"features"}
        missing = needed - set(batch.schema.names)
        if missing:
            raise ValueError(f"{self.window} batch lacks columns {sorted(missing)}")
        feats = batch.column("features")
        if isinstance(feats, pa.ChunkedArray):
            feats = feats.combine_chunks()
        if feats.null_count:
            raise ValueError(f"{self.window} window has null feature vectors: log full vectors")
        flat = feats.flatten().to_numpy(zero_copy_only=False)
        f = len(flat) // k
        if f == 0 or len(flat) != f * k:
            raise ValueError(
                f"{self.window} window has feature vectors of different lengths: "
                "log one fixed-length vector per row"
            )
        if self.n_features is None:
            self.n_features = f
            self.features = HistogramSketch(f, self.bins) if self.sketch else None
        elif f != self.n_features:
            raise ValueError(
                f"{self.window} window has {f} and {self.n_features} features in different rows"
            )
        x = flat.reshape(k, f)
        checked = [("features", x)]
        if self.outputs:
            conf = batch.column("confidence").to_numpy(zero_copy_only=False).reshape(k, 1)
            checked.append(("confidence", conf))
        for name, values in checked:
            if not np.isfinite(values).all():
                raise ValueError(
                    f"{self.window} window has NaN/inf in {name}: drop or impute them first"
                )
        if self.outputs:
            codes = pc.index_in(batch.column("pred"), value_set=self.classes)
            if codes.null_count:
                raise ValueError(
                    f"{self.window} window has predicted classes outside {self.classes.to_pylist()}"
                )
            self.pred_counts += np.bincount(
                codes.to_numpy(zero_copy_only=False), minlength=len(self.classes)
            )
            self.confidence.update(conf)
        if self.features is not None:
            self.features.update(x)
        if self._kept is not None and self.n + k > self.keep_rows:
            self._kept = None  # too many rows to keep: the distances will judge this window
        if self._kept is not None or self.tests is not None:
            both = np.concatenate([x, conf.astype(x.dtype)], axis=1) if self.outputs else x
            if self.tests is not None:
                self.tests.update(both)
            if self._kept is not None:
                self._kept.append(np.array(both, dtype=np.float64))
        self.n += k

    def column(self, j: int) -> tuple[HistogramSketch, int]:
        """(sketch, column index) of feature j, or of confidence when j == n_features."""
        return (self.confidence, 0) if j == self.n_features else (self.features, j)
