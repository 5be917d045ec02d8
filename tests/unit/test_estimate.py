"""The label-free performance estimate (evaluation/estimate.py): exact values on hand-made
cases, the interval, the slices, the refusals, and its documented blind spot (concept shift)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from evaluation import estimate as estimate_module
from evaluation.estimate import EstimateRules, calibrated, calibrator, estimate_accuracy

NO_BOOT = EstimateRules(min_audit=10, bootstrap=0)


def audit_60_90() -> tuple[list[float], list[int]]:
    """20 audit rows: at confidence 0.6 the model is right 6 of 10, at 0.9 9 of 10 (calibrated)."""
    conf = [0.6] * 10 + [0.9] * 10
    correct = [1] * 6 + [0] * 4 + [1] * 9 + [0]
    return conf, correct


def test_docstring_example() -> None:
    result = doctest.testmod(estimate_module)
    assert result.attempted > 0 and result.failed == 0


def test_calibrated_model_estimate_is_the_mean_confidence() -> None:
    conf, correct = audit_60_90()
    window = [0.6] * 30 + [0.9] * 10  # a covariate shift towards the harder rows
    out = estimate_accuracy(conf, correct, window, rules=NO_BOOT)
    assert out["accuracy"] == pytest.approx((30 * 0.6 + 10 * 0.9) / 40)  # 0.675
    assert (out["n_audit"], out["n_rows"], out["reason"]) == (20, 40, None)
    assert out["low"] is None and out["high"] is None  # bootstrap = 0: no interval


def test_overconfident_model_is_corrected() -> None:
    """Confidence 0.9 everywhere but right half the time: the estimate is 0.5, not 0.9."""
    conf = [0.9] * 40
    correct = [1, 0] * 20
    out = estimate_accuracy(conf, correct, [0.9] * 100, rules=NO_BOOT)
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["sd_sampling"] == pytest.approx(np.sqrt(100 * 0.25) / 100)  # 0.05


def test_out_of_range_confidence_is_clipped_to_the_audit_range() -> None:
    conf, correct = audit_60_90()
    out = estimate_accuracy(conf, correct, [0.3, 0.99], rules=NO_BOOT)
    assert out["accuracy"] == pytest.approx((0.6 + 0.9) / 2)


def test_isotonic_pools_violators() -> None:
    """Accuracy 0.8 at 0.5 and 0.4 at 0.7 is not monotone: pooled to 0.6 for both."""
    iso = calibrator([0.5] * 5 + [0.7] * 5, [1, 1, 1, 1, 0] + [1, 1, 0, 0, 0])
    assert iso.predict([0.5, 0.7]).tolist() == pytest.approx([0.6, 0.6])


def test_per_slice_estimates() -> None:
    conf, correct = audit_60_90()
    window = [0.6] * 20 + [0.9] * 20
    attrs = [{"device": "a"}] * 20 + [{"device": "b"}] * 20
    rules = EstimateRules(min_audit=10, bootstrap=0, min_slice_rows=20)
    out = estimate_accuracy(conf, correct, window, attrs, rules)
    assert out["accuracy"] == pytest.approx(0.75)
    assert sorted(out["by_slice"]) == ["device=a", "device=b"]
    assert out["by_slice"]["device=a"]["accuracy"] == pytest.approx(0.6)
    assert out["by_slice"]["device=b"]["accuracy"] == pytest.approx(0.9)
    assert out["by_slice"]["device=b"]["n_rows"] == 20
    # a slice value with fewer rows than min_slice_rows gets no estimate of its own
    attrs[0] = {"device": "a", "site": "x"}
    assert "site=x" not in estimate_accuracy(conf, correct, window, attrs, rules)["by_slice"]


def test_bootstrap_interval_is_seeded_and_contains_the_point() -> None:
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1.0, 200)
    correct = rng.uniform(size=200) < conf  # calibrated by construction
    window = rng.uniform(0.5, 1.0, 500)
    rules = EstimateRules(min_audit=30, bootstrap=100, level=0.9, seed=3)
    a = estimate_accuracy(conf, correct, window, rules=rules)
    b = estimate_accuracy(conf, correct, window, rules=rules)
    assert a == b
    assert a["low"] < a["accuracy"] < a["high"]
    assert a["high"] - a["low"] < 0.15
    assert abs(a["accuracy"] - window.mean()) < 0.05  # calibrated: about the mean confidence


def test_too_few_audit_labels_gives_no_number() -> None:
    out = estimate_accuracy([0.9] * 29, [1] * 29, [0.9] * 10, rules=EstimateRules())
    assert out["accuracy"] is None and out["n_audit"] == 29
    assert "29 calibration labels" in out["reason"] and "min_audit" in out["reason"]


def test_no_window_rows_gives_no_number() -> None:
    conf, correct = audit_60_90()
    out = estimate_accuracy(conf, correct, [], rules=NO_BOOT)
    assert out["accuracy"] is None and "no recent rows" in out["reason"]


def test_fails_under_concept_shift() -> None:
    """The documented limit: P(y|x) changes (same inputs and confidences, labels flipped),
    the true accuracy falls from 0.75 to 0.25, the estimate stays at 0.75."""
    conf, correct = audit_60_90()
    window = [0.6] * 20 + [0.9] * 20
    rng = np.random.default_rng(0)
    truth_before = np.r_[rng.uniform(size=20) < 0.6, rng.uniform(size=20) < 0.9]
    truth_after = ~truth_before  # concept shift: the model is now wrong where it was right
    est = estimate_accuracy(conf, correct, window, rules=NO_BOOT)["accuracy"]
    assert est == pytest.approx(0.75)
    assert abs(est - truth_after.mean()) > 0.4  # the estimate cannot see it
    assert abs(est - truth_before.mean()) < 0.15


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"min_audit": 1}, "min_audit"),
        ({"audit_rows": 10}, "audit_rows"),
        ({"level": 1.0}, "level"),
        ({"bootstrap": -1}, "bootstrap"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_rules_name_the_bad_key(kw, field) -> None:
    with pytest.raises(ValueError, match=rf"\[estimate\] {field}"):
        EstimateRules(**kw)


def test_mismatched_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="audit_correct"):
        estimate_accuracy([0.5, 0.6], [1], [0.5])
    with pytest.raises(ValueError, match="window_attrs"):
        estimate_accuracy([0.5] * 30, [1] * 30, [0.5], [{}, {}])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bootstraps_fast_fit_is_isotonic_regression(seed) -> None:
    rng = np.random.default_rng(seed)
    conf = np.round(rng.uniform(0.3, 1.0, 300), 2)  # ties, as float32 logs make them
    correct = (rng.uniform(size=300) < conf).astype(float)
    x = np.linspace(0.0, 1.0, 101)  # inside and outside the fitted range
    expected = calibrator(conf, correct).predict(x)
    assert calibrated(conf, correct, x) == pytest.approx(expected, abs=1e-12)
    assert calibrated(np.full(5, 0.7), np.array([1, 1, 0, 1, 1.0]), x[:2]).tolist() == [0.8, 0.8]
