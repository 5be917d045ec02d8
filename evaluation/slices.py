"""Accuracy per slice: per value of each slice attribute (source, device, cohort...).

Why: an overall gain can hide a regression on one device or cohort; the gate compares
slices one by one, so they must be counted the same way for both models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evaluation.metrics import _pair

#: the slice value of rows that lack the attribute: counted, never silently dropped
MISSING = "(missing)"


def slice_metrics(
    y_true: Any,
    y_pred: Any,
    attrs: Sequence[Mapping[str, str | None]],
    keys: Sequence[str],
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{key: {value: {"n": rows, "accuracy": share right}}}`` for every key, values sorted.

    `attrs` holds one mapping per row (the prediction log's `attrs` column). A row without
    the key, or with a null value, lands in the ``"(missing)"`` slice.

    >>> slice_metrics([0, 1, 1], [0, 1, 0], [{"d": "a"}, {"d": "b"}, {"d": "b"}], ["d"])
    {'d': {'a': {'n': 1, 'accuracy': 1.0}, 'b': {'n': 2, 'accuracy': 0.5}}}
    """
    t, p = _pair(y_true, y_pred)
    if len(attrs) != t.size:
        raise ValueError(
            f"attrs has {len(attrs)} rows, y_true has {t.size}: pass one attrs mapping per row"
        )
    if isinstance(keys, str):
        raise ValueError(f"keys = {keys!r} is a string: pass a sequence of attribute names")
    correct = t == p
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key in keys:
        values = np.array(
            [MISSING if (a or {}).get(key) is None else str(a[key]) for a in attrs], dtype=object
        )
        out[key] = {}
        for value in sorted(set(values.tolist())):
            mask = values == value
            out[key][value] = {"n": int(mask.sum()), "accuracy": float(correct[mask].mean())}
    return out
