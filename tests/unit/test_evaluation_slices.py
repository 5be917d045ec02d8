"""Slice metrics count rows per attribute value, missing values included."""

from __future__ import annotations

import pytest

from evaluation.slices import slice_metrics


def test_counts_and_accuracy_per_value() -> None:
    y_true = [0, 1, 1, 2, 2, 0]
    y_pred = [0, 1, 0, 2, 1, 0]
    attrs = [
        {"device": "a", "source": "web"},
        {"device": "b", "source": "web"},
        {"device": "b", "source": "app"},
        {"device": "a"},
        {"device": "c", "source": None},
        {"device": "a", "source": "app"},
    ]
    out = slice_metrics(y_true, y_pred, attrs, ["device", "source"])
    assert out == {
        "device": {
            "a": {"n": 3, "accuracy": 1.0},
            "b": {"n": 2, "accuracy": 0.5},
            "c": {"n": 1, "accuracy": 0.0},
        },
        "source": {
            "(missing)": {"n": 2, "accuracy": 0.5},
            "app": {"n": 2, "accuracy": 0.5},
            "web": {"n": 2, "accuracy": 1.0},
        },
    }


def test_no_keys_gives_empty() -> None:
    assert slice_metrics([0], [0], [{}], []) == {}


def test_errors() -> None:
    with pytest.raises(ValueError, match="attrs has 1 rows, y_true has 2"):
        slice_metrics([0, 1], [0, 1], [{}], ["d"])
    with pytest.raises(ValueError, match="is a string"):
        slice_metrics([0], [0], [{}], "device")
