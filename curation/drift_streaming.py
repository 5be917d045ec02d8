"""Drift over windows of any size, read once, batch by batch, in bounded memory.

Same rules and the same `DriftVerdict` as `curation.drift.compute_drift`; the numeric columns
are summarised by histogram sketches (`curation.drift_sketch`), exact for columns whose
distinct values are further apart than a bin (digits' grey levels, constant borders), within
the sketch's documented error bound for the others.

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
from curation.drift_sketch import BINS, HistogramSketch, WindowSketch, wasserstein_atoms
from curation.drift_verdict import (
    JENSEN_SHANNON,
    MAX_DISCRETE,
    MIN_STD,
    WASSERSTEIN,
    ColumnDrift,
    DriftVerdict,
    check_classes,
    check_finite,
    check_share,
    check_vector,
    column_drift,
    column_names,
    combine,
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
) -> DriftVerdict:
    """`compute_drift` over windows of any size, read once, batch by batch, in bounded memory.

    `reference` and `current` yield Arrow batches with the prediction log's `features`
    (list<float>), `pred` (class name) and `confidence` columns, e.g.
    `Queries.window_batches(...)`; row order does not matter. With `outputs` =
    (reference outputs, current outputs) the batches need `features` only, and the
    predicted class and confidence are judged on those arrays instead (exactly: they hold a
    bounded sample). Columns whose distinct values are further apart than a histogram bin get
    exactly `compute_drift`'s scores; others are within the sketch's `error_bound` (at most
    half a bin width per window, divided by the reference std; see `curation.drift_sketch`).
    Memory: 3 x `bins` x 8 bytes per column and window, plus one batch.
    """
    check_share(drift_share)
    logged = outputs is None
    ref = WindowSketch(classes, "reference", bins, outputs=logged).consume(reference)
    cur = WindowSketch(classes, "current", bins, outputs=logged).consume(current)
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
    columns = [
        _sketch_drift(name, *ref.column(j), *cur.column(j), numeric_threshold)
        for j, name in enumerate(names)
    ]
    if logged:
        f = ref.n_features  # column f of a window sketch is the confidence
        columns.append(_sketch_drift("confidence", *ref.column(f), *cur.column(f),
                                     numeric_threshold))  # fmt: skip
        score = jensen_shannon(ref.pred_counts, cur.pred_counts)
        prediction = column_drift(JENSEN_SHANNON, "pred", score, categorical_threshold)
        conf_ref, conf_cur = ref.confidence.mean(0), cur.confidence.mean(0)
    else:
        r_out, c_out = (o.checked(w, len(classes)) for o, w in zip(
            outputs, ("reference", "current"), strict=True))  # fmt: skip
        r_c, c_c = r_out.confidence, c_out.confidence
        columns.append(numeric_drift("confidence", r_c, c_c, numeric_threshold))
        prediction = categorical_drift("pred", r_out.pred, c_out.pred, len(classes),
                                       categorical_threshold)  # fmt: skip
        conf_ref, conf_cur = r_c.mean(), c_c.mean()
    return combine(columns, prediction, drift_share, ref.n, cur.n, conf_ref, conf_cur)


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
