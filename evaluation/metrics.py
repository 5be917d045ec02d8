"""Classification metrics on integer class indices, in plain NumPy.

Why our own and not scikit-learn: the report card and the gate must give the same number
for the same arrays in every environment, with errors that say what to fix, and without
warnings when a class is absent from a small eval set. The tests cross-check the values
against scikit-learn.

Everything takes class *indices* (``task.class_index(name)``), never names: the task's class
order is the one contract that ties probabilities, predictions and labels together.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import sqrt
from typing import Any

import numpy as np


def _labels(name: str, y: Any, n_classes: int | None = None) -> np.ndarray:
    """Return `y` as a 1-D int64 array, or raise a ValueError naming `name` and the fix."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}: pass a 1-D array of class indices")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: evaluate on at least one labeled row")
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name} has dtype {arr.dtype}: pass integer class indices (task.class_index(name))"
        )
    arr = arr.astype(np.int64, copy=False)
    if n_classes is not None:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= n_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{name} has class index {bad}, outside 0..{n_classes - 1}: "
                f"labels must index the task's {n_classes} classes"
            )
    return arr


def _pair(y_true: Any, y_pred: Any, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    t = _labels("y_true", y_true, n_classes)
    p = _labels("y_pred", y_pred, n_classes)
    if t.shape != p.shape:
        raise ValueError(
            f"y_true has {t.size} rows, y_pred has {p.size}: pass one prediction per label"
        )
    return t, p


def _check_n_classes(n_classes: int) -> None:
    if int(n_classes) < 1:
        raise ValueError(f"n_classes = {n_classes}: a task has at least one class")


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of rows where the prediction equals the label.

    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class (counts, int64).

    >>> confusion([0, 1, 1], [0, 0, 1], 2).tolist()
    [[1, 0], [1, 1]]
    """
    _check_n_classes(n_classes)
    t, p = _pair(y_true, y_pred, n_classes)
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class; 0.0 where a ratio is undefined.

    F1 is written 2tp / (2tp + fp + fn), which equals the harmonic mean of precision and
    recall and stays defined when the model never predicts a class.
    """
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    support = cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = predicted + support  # = 2tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    return precision, recall, f1, support


def macro_f1(y_true: Any, y_pred: Any, n_classes: int) -> float:
    """Unweighted mean F1 over the classes present in `y_true` or `y_pred`.

    Why not over all `n_classes`: a class absent from a small eval set and never predicted
    has no F1 at all, and counting it as 0 would punish every model alike for the eval set's
    gaps. A class the model predicts but the eval set lacks still counts (as 0): that is a
    real mistake. This is scikit-learn's ``f1_score(average="macro")``.

    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1], 3), 4)
    0.7333
    """
    cm = confusion(y_true, y_pred, n_classes)
    _, _, f1, _ = _prf(cm)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    return float(f1[present].mean())


def per_class(y_true: Any, y_pred: Any, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for every class of the task, keyed by class name.

    Every class appears, even with support 0, so that two models' tables line up.
    """
    names = [str(c) for c in classes]
    if len(set(names)) != len(names):
        raise ValueError(f"classes {names} has duplicate names: class names must be unique")
    cm = confusion(y_true, y_pred, len(names))
    precision, recall, f1, support = _prf(cm)
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }


def _probs_and_labels(probs: Any, y_true: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(
            f"probs has shape {p.shape}: pass an (N, C) array of class probabilities, N >= 1"
        )
    if not np.all(np.isfinite(p)) or p.min() < -1e-6 or p.max() > 1 + 1e-6:
        raise ValueError("probs has values outside [0, 1] or NaN: pass softmax outputs, not logits")
    t = _labels("y_true", y_true, p.shape[1])
    if t.size != p.shape[0]:
        raise ValueError(
            f"probs has {p.shape[0]} rows, y_true has {t.size}: pass one label per row"
        )
    return p, t


def reliability_bins(probs: Any, y_true: Any, n_bins: int = 15) -> list[dict[str, Any]]:
    """Equal-width confidence bins on [0, 1]: what the reliability diagram draws.

    Confidence is the top-class probability; bin i holds confidences in (lo, hi] (the first
    bin also holds 0). Each bin gives its `count`, `accuracy` (share of top-class
    predictions that are right) and mean `confidence`; both are None for an empty bin, so a
    plot skips it instead of drawing a fake zero.
    """
    if int(n_bins) < 1:
        raise ValueError(f"n_bins = {n_bins}: use at least one bin (15 is the usual choice)")
    p, t = _probs_and_labels(probs, y_true)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges, right=True) - 1, 0, n_bins - 1)
    bins: list[dict[str, Any]] = []
    for i in range(n_bins):
        mask = idx == i
        count = int(mask.sum())
        bins.append(
            {
                "lo": float(edges[i]),
                "hi": float(edges[i + 1]),
                "count": count,
                "accuracy": float(correct[mask].mean()) if count else None,
                "confidence": float(conf[mask].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(probs: Any, y_true: Any, n_bins: int = 15) -> float:
    """ECE: mean |accuracy - confidence| over equal-width confidence bins, weighted by size.

    Why it is on the card: a retrained model can keep its accuracy and grow overconfident,
    which silently breaks every threshold and uncertainty sampler downstream.
    """
    bins = reliability_bins(probs, y_true, n_bins)
    n = sum(b["count"] for b in bins)
    return float(
        sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]) / n
    )


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (95% by default).

    Why Wilson and not k/n ± z·se: it stays inside [0, 1] and is honest for small slices
    and accuracies near 1, which is exactly where gate decisions are made.

    >>> tuple(round(v, 4) for v in wilson_interval(8, 10))
    (0.4902, 0.9433)
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n = {n}: the interval needs at least one trial (an integer count)")
    if int(k) != k or not 0 <= k <= n:
        raise ValueError(f"k = {k}: successes must be an integer count between 0 and n = {n}")
    if not z > 0:
        raise ValueError(f"z = {z}: use a positive normal quantile (1.96 for 95%)")
    phat = k / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (phat + z2 / (2 * n)) / denom
    half = z * sqrt(phat * (1 - phat) / n + z2 / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)
