"""Drift over windows of any size, read once, batch by batch, in bounded memory.

Same rules and the same `DriftVerdict` as `curation.drift.compute_drift`. The reference is
read first; its size picks the rule (Evidently's: p-value tests at <= 1000 rows). Then:

* p-value tests: the reference's rows are kept (at most 1000) and every current batch is
  counted against them (`curation.drift_pvalues.CurrentTests`): exactly the p-values of the
  whole current window, in memory that does not grow with it;
* distances: the numeric columns are summarised by histogram sketches
  (`curation.drift_sketch`), exact for columns whose distinct values are further apart than
  a bin (digits' grey levels, constant borders), within the sketch's documented error bound
  for the others.

The model-output columns (predicted class, confidence) come either from the batches (the
logged `pred` and `confidence`) or, with `outputs=`, from arrays: the outputs of one model
re-scoring (a sample of) each window, so that a freshly promoted champion is judged on its
own predictions, not on what the previous champion logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curation.drift_exact import categorical_drift, jensen_shannon, numeric_drift
from curation.drift_pvalues import (
    CurrentTests,
    categorical_pvalue_drift,
    counted_drift,
    pvalue_drift,
)
from curation.drift_sketch import BINS, HistogramSketch, WindowSketch, wasserstein_atoms
from curation.drift_verdict import (
    AUTO,
    DISTANCE,
    JENSEN_SHANNON,
    MAX_DISCRETE,
    MIN_STD,
    SMALL_REFERENCE,
    WASSERSTEIN,
    ColumnDrift,
    DriftVerdict,
    check_classes,
    check_finite,
    check_share,
    check_stattest,
    check_vector,
    column_drift,
    column_names,
    combine,
    uses_p_values,
)


@dataclass(frozen=True)
class ModelOutputs:
    """A model's outputs on (a sample of) one window: predicted class indices (0..C-1) and
    top-class confidences, one per row it scored.

    >>> ModelOutputs(np.array([0, 2]), np.array([0.9, 0.6])).n
    2
    """

    pred: np.ndarray
    confidence: np.ndarray

    @property
    def n(self) -> int:
        return len(self.pred)

    def checked(self, window: str, n_classes: int) -> ModelOutputs:
        pred = np.asarray(self.pred)
        if pred.ndim != 1 or len(pred) == 0:
            raise ValueError(
                f"{window} outputs have shape {pred.shape}: pass one predicted class per "
                "re-scored row (at least one row)"
            )
        pred = check_classes(f"{window} outputs.pred", pred, n_classes)
        conf = check_vector(f"{window} outputs.confidence", self.confidence, len(pred), "pred")
        conf = conf.astype(np.float64)
        check_finite(f"{window} outputs.confidence", conf)
        return ModelOutputs(pred, conf)


def compute_drift_streaming(
    reference: Iterable[pa.RecordBatch | pa.Table],
    current: Iterable[pa.RecordBatch | pa.Table],
    classes: Sequence[str],
    numeric_threshold: float = 0.1,
    categorical_threshold: float = 0.1,
    drift_share: float = 0.5,
    feature_names: Sequence[str] | None = None,
    bins: int = BINS,
    outputs: tuple[ModelOutputs, ModelOutputs] | None = None,
    stattest: str = AUTO,
    p_value: float = 0.05,
) -> DriftVerdict:
    """`compute_drift` over windows of any size, read once, batch by batch, in bounded memory.

    `reference` and `current` yield Arrow batches with the prediction log's `features`
    (list<float>), `pred` (class name) and `confidence` columns, e.g.
    `Queries.window_batches(...)`; row order does not matter; the reference is read first.
    With `outputs` = (reference outputs, current outputs) the batches need `features` only,
    and the predicted class and confidence are judged on those arrays instead (exactly: they
    hold a bounded sample). `stattest` and `p_value` as in `compute_drift`. Under p-value
    tests every score is exact. Under distances, columns whose distinct values are further
    apart than a histogram bin get exactly `compute_drift`'s scores; others are within the
    sketch's `error_bound` (at most half a bin width per window, divided by the reference
    std; see `curation.drift_sketch`). Memory: 3 x `bins` x 8 bytes per column and window
    (distances) or a few counters per distinct reference value (tests), plus one batch.
    """
    check_share(drift_share)
    check_stattest(stattest, p_value)
    logged = outputs is None
    keep = SMALL_REFERENCE if stattest == AUTO else 0
    ref = WindowSketch(classes, "reference", bins, outputs=logged, keep_rows=keep)
    ref.consume(reference)
    small = uses_p_values(stattest, ref.n) and ref.n > 0
    tests = CurrentTests(ref.rows()) if small else None
    cur = WindowSketch(classes, "current", bins, outputs=logged, tests=tests, sketch=not small)
    cur.consume(current)
    if ref.n == 0 or cur.n == 0:
        raise ValueError(
            f"need rows in both windows (reference {ref.n}, current {cur.n}): widen the windows"
        )
    if ref.n_features != cur.n_features:
        raise ValueError(
            f"reference has {ref.n_features} features, current {cur.n_features}: "
            "compute both with the same task.features"
        )
    names = column_names(feature_names, ref.n_features)
    if small:
        columns = [tests.column(j, name, p_value) for j, name in enumerate(names)]
    else:
        columns = [
            _sketch_drift(name, *ref.column(j), *cur.column(j), numeric_threshold)
            for j, name in enumerate(names)
        ]
    if logged:
        f = ref.n_features  # column f of a window sketch (and of the tests) is the confidence
        if small:
            columns.append(tests.column(f, "confidence", p_value))
            prediction = counted_drift("pred", *_by_name(classes, ref, cur), p_value)
        else:
            columns.append(_sketch_drift("confidence", *ref.column(f), *cur.column(f),
                                         numeric_threshold))  # fmt: skip
            score = jensen_shannon(ref.pred_counts, cur.pred_counts)
            prediction = column_drift(JENSEN_SHANNON, "pred", score, categorical_threshold)
        conf_ref, conf_cur = ref.confidence.mean(0), cur.confidence.mean(0)
    else:
        r_out, c_out = (o.checked(w, len(classes)) for o, w in zip(
            outputs, ("reference", "current"), strict=True))  # fmt: skip
        r_c, c_c = r_out.confidence, c_out.confidence
        if uses_p_values(stattest, r_out.n):  # decided, as Evidently, by that column's reference
            columns.append(pvalue_drift("confidence", r_c, c_c, p_value))
            prediction = categorical_pvalue_drift("pred", r_out.pred, c_out.pred, classes,
                                                  p_value)  # fmt: skip
        else:
            columns.append(numeric_drift("confidence", r_c, c_c, numeric_threshold))
            prediction = categorical_drift("pred", r_out.pred, c_out.pred, len(classes),
                                           categorical_threshold)  # fmt: skip
        conf_ref, conf_cur = r_c.mean(), c_c.mean()
    rule = "p_value" if small else DISTANCE
    return combine(columns, prediction, drift_share, ref.n, cur.n, conf_ref, conf_cur, rule)


def _by_name(classes: Sequence[str], *windows: WindowSketch) -> list[np.ndarray]:
    """Each window's class counts, classes sorted by name (Evidently's key order)."""
    order = sorted(range(len(classes)), key=lambda i: str(classes[i]))
    return [w.pred_counts[order] for w in windows]


def _sketch_drift(
    name: str, r: HistogramSketch, i: int, c: HistogramSketch, k: int, threshold: float
) -> ColumnDrift:
    r_pos, r_mass = r.atoms(i)
    c_pos, c_mass = c.atoms(k)
    r_n, c_n = r.distinct(i), c.distinct(k)
    if r_n is not None and c_n is not None and r_n <= MAX_DISCRETE and c_n <= MAX_DISCRETE:
        values = np.union1d(r_pos, c_pos)
        if len(values) <= MAX_DISCRETE:
            r_counts, c_counts = np.zeros(len(values)), np.zeros(len(values))
            r_counts[np.searchsorted(values, r_pos)] = r_mass
            c_counts[np.searchsorted(values, c_pos)] = c_mass
            return column_drift(JENSEN_SHANNON, name, jensen_shannon(r_counts, c_counts), threshold)
    w1 = wasserstein_atoms(r_pos, r_mass, c_pos, c_mass)
    return column_drift(WASSERSTEIN, name, w1 / max(r.std(i), MIN_STD), threshold)
