"""Benchmark metric definitions on hand-made curves, with exact expected values."""

from __future__ import annotations

import pytest

from evaluation import bench_metrics as bm


def test_auc_is_mean_accuracy_from_onset():
    acc = [1.0, 1.0, 0.4, 0.6, 0.8, 1.0]
    assert bm.curve_auc(acc, start=2) == pytest.approx(0.7)
    assert bm.curve_auc(acc, start=None) == pytest.approx(4.8 / 6)
    with pytest.raises(ValueError, match="outside"):
        bm.curve_auc(acc, start=6)


def test_rolling_mean_never_reaches_before_onset():
    assert bm.rolling_mean([9.0, 0.3, 0.6, 0.9, 0.0], start=1, window=3) == pytest.approx(
        [0.3, 0.45, 0.6, 0.5]
    )


def test_batches_to_recover_counts_from_onset_and_must_stay():
    oracle = [0.95] * 8
    #        clean  onset ...
    acc = [0.95, 0.40, 0.60, 0.95, 0.95, 0.95, 0.95, 0.95]
    # rolling-3 from onset 1: .40 .50 .65 .833 .95 .95 .95 -> within 0.03 from batch 5
    assert bm.batches_to_recover(acc, oracle, onset=1) == 4
    # recovering then falling behind at the end is "never"
    assert bm.batches_to_recover(acc[:-1] + [0.5], oracle, onset=1) is None
    # never behind
    assert bm.batches_to_recover(oracle, oracle, onset=1) == 0
    # within tolerance counts (0.93 vs 0.95), and above the oracle is fine
    assert bm.batches_to_recover([0.93, 0.99], [0.95, 0.95], onset=0, window=1) == 0
    assert bm.batches_to_recover(acc, oracle, onset=None) is None


def test_detection_delay_and_false_triggers():
    assert bm.detection_delay([2, 9, 11], onset=6) == 3
    assert bm.detection_delay([6], onset=6) == 0
    assert bm.detection_delay([2], onset=6) is None
    assert bm.detection_delay([2], onset=None) is None
    assert bm.false_triggers([2, 9, 11], onset=6) == 1
    assert bm.false_triggers([2, 9, 11], onset=None) == 3


def test_matched_budget_interpolates_linearly():
    budgets, aucs = [10, 20, 40, 80], [0.80, 0.85, 0.88, 0.90]
    assert bm.matched_budget(budgets, aucs, 0.865) == bm.MatchedBudget(30.0, "exact")
    assert bm.matched_budget(budgets, aucs, 0.85) == bm.MatchedBudget(20.0, "exact")
    assert bm.matched_budget(budgets, aucs, 0.79) == bm.MatchedBudget(10.0, "at_most")
    assert bm.matched_budget(budgets, aucs, 0.95) == bm.MatchedBudget(80.0, "at_least")
    # order of the inputs does not matter
    assert bm.matched_budget(budgets[::-1], aucs[::-1], 0.865).budget == pytest.approx(30.0)


def test_matched_budget_uses_the_running_maximum():
    # 40 measured a hair below 20 by noise: the match lies between 40 and 80, never before 20
    assert bm.matched_budget([10, 20, 40, 80], [0.80, 0.86, 0.85, 0.90], 0.88) == bm.MatchedBudget(
        60.0, "exact"
    )


def test_label_efficiency_is_matched_budget_over_budget():
    eff, bound = bm.label_efficiency([10, 20, 40, 80], [0.80, 0.85, 0.88, 0.90], 0.89, 10)
    assert (eff, bound) == (pytest.approx(6.0), "exact")
    eff, bound = bm.label_efficiency([20, 40, 80, 160], [0.80, 0.85, 0.88, 0.90], 0.95, 20)
    assert (eff, bound) == (pytest.approx(8.0), "at_least")
    with pytest.raises(ValueError, match="budget"):
        bm.label_efficiency([10], [0.8], 0.8, 0)


def test_harmful_promotion_is_a_drop_of_more_than_half_a_point():
    assert bm.harmful(0.900, 0.894) is True
    assert bm.harmful(0.900, 0.895) is False
    assert bm.harmful(0.900, 0.950) is False


def test_curves_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        bm.curve_auc([0.5, float("nan")], start=0)


def test_docstring_examples():
    import doctest

    result = doctest.testmod(bm)
    assert result.attempted > 0 and result.failed == 0
