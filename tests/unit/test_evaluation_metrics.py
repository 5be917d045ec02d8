"""Metrics on hand-made arrays: exact values, cross-checked with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from evaluation.metrics import (
    accuracy,
    confusion,
    expected_calibration_error,
    macro_f1,
    per_class,
    reliability_bins,
    wilson_interval,
)

Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
Y_PRED = np.array([0, 0, 1, 1, 2, 2, 2, 0, 2, 4])  # class 4 predicted but never true


def test_accuracy_exact_and_matches_sklearn() -> None:
    assert accuracy(Y_TRUE, Y_PRED) == 0.6
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(accuracy_score(Y_TRUE, Y_PRED))


def test_macro_f1_exact_and_matches_sklearn() -> None:
    # F1 per class: 0 -> 2*2/(3+3)=2/3, 1 -> 2/(2+2)=1/2, 2 -> 2*3/(4+4)=3/4, 3 -> 0, 4 -> 0;
    # class 5 absent from both: not averaged
    expected = (2 / 3 + 1 / 2 + 3 / 4) / 5
    assert macro_f1(Y_TRUE, Y_PRED, 6) == pytest.approx(expected, abs=1e-12)
    assert macro_f1(Y_TRUE, Y_PRED, 6) == pytest.approx(f1_score(Y_TRUE, Y_PRED, average="macro"))


def test_macro_f1_random_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 7, 300), rng.integers(0, 7, 300)
    assert macro_f1(t, p, 7) == pytest.approx(f1_score(t, p, average="macro"), abs=1e-12)


def test_confusion_matches_sklearn() -> None:
    cm = confusion(Y_TRUE, Y_PRED, 6)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, confusion_matrix(Y_TRUE, Y_PRED, labels=range(6)))
    assert cm[2].tolist() == [1, 0, 3, 0, 0, 0]


def test_per_class_every_class_and_matches_sklearn() -> None:
    classes = ["a", "b", "c", "d", "e", "f"]
    pc = per_class(Y_TRUE, Y_PRED, classes)
    assert list(pc) == classes
    assert pc["a"] == {
        "precision": 2 / 3,
        "recall": 2 / 3,
        "f1": pytest.approx(2 / 3),
        "support": 3,
    }
    assert pc["f"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    p, r, f, s = precision_recall_fscore_support(Y_TRUE, Y_PRED, labels=range(6), zero_division=0)
    for i, c in enumerate(classes):
        assert pc[c]["precision"] == pytest.approx(p[i])
        assert pc[c]["recall"] == pytest.approx(r[i])
        assert pc[c]["f1"] == pytest.approx(f[i])
        assert pc[c]["support"] == s[i]


def test_per_class_refuses_duplicate_names() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        per_class([0], [0], ["a", "a"])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1], [0], "y_true has 2 rows, y_pred has 1"),
        ([], [], "y_true is empty"),
        ([0.0, 1.0], [0, 1], "dtype float64"),
        ([[0, 1]], [[0, 1]], "1-D"),
    ],
)
def test_label_errors_name_the_field(y_true: list, y_pred: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        accuracy(y_true, y_pred)


def test_class_index_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"y_pred has class index 3, outside 0..2"):
        confusion([0, 1], [0, 3], 3)


# conf 0.9 (right), 0.75 (wrong), 0.7 (right), 0.55 (wrong)
PROBS = np.array([[0.9, 0.1], [0.75, 0.25], [0.3, 0.7], [0.45, 0.55]])
Y = np.array([0, 1, 1, 0])


def test_ece_by_hand() -> None:
    # 5 bins: (0.8,1] {0.9: right} gap 0.1; (0.6,0.8] {0.75 wrong, 0.7 right} acc 0.5,
    # conf 0.725, gap 0.225; (0.4,0.6] {0.55 wrong} gap 0.55
    # ECE = (1*0.1 + 2*0.225 + 1*0.55) / 4 = 0.275
    assert expected_calibration_error(PROBS, Y, n_bins=5) == pytest.approx(0.275)
    # one bin: |mean acc - mean conf| = |0.5 - 0.725|
    assert expected_calibration_error(PROBS, Y, n_bins=1) == pytest.approx(0.225)


def test_ece_perfect_when_confident_and_right() -> None:
    assert expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0


def test_reliability_bins_shape_and_empty_bins() -> None:
    bins = reliability_bins(PROBS, Y, n_bins=5)
    assert [b["count"] for b in bins] == [0, 0, 1, 2, 1]
    assert bins[0]["accuracy"] is None and bins[0]["confidence"] is None
    assert bins[3] == {
        "lo": pytest.approx(0.6),
        "hi": pytest.approx(0.8),
        "count": 2,
        "accuracy": 0.5,
        "confidence": pytest.approx(0.725),
    }
    # confidence exactly 1.0 lands in the last bin
    assert reliability_bins(np.array([[1.0, 0.0]]), [0], n_bins=15)[-1]["count"] == 1


def test_ece_errors() -> None:
    with pytest.raises(ValueError, match="probs has 4 rows, y_true has 3"):
        expected_calibration_error(PROBS, [0, 1, 1])
    with pytest.raises(ValueError, match="not logits"):
        expected_calibration_error(np.array([[2.0, -1.0]]), [0])
    with pytest.raises(ValueError, match="n_bins = 0"):
        expected_calibration_error(PROBS, Y, n_bins=0)
    with pytest.raises(ValueError, match="probs has shape"):
        expected_calibration_error(np.zeros((0, 2)), np.array([], dtype=int))


def test_wilson_known_value() -> None:
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    ref = binomtest(8, 10).proportion_ci(confidence_level=0.95, method="wilson")
    z = norm.ppf(0.975)
    assert wilson_interval(8, 10, z=z) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_wilson_edges_and_errors() -> None:
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0 < hi < 0.2
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and 0.8 < lo < 1.0
    with pytest.raises(ValueError, match="n = 0"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="k = 11"):
        wilson_interval(11, 10)
