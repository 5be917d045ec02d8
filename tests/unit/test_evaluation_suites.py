"""Edge-case suites on the card: the pass rule and what each entry says."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.suites import judge_suite, run_suites

T, F = True, False


def test_relative_rule_with_tolerance():
    r = judge_suite("s", [T, T, F, F], [T, T, T, F], tolerance=0.25, required=True)
    assert (r["n"], r["challenger"], r["champion"], r["passed"]) == (4, 0.5, 0.75, True)
    assert r["required"] is True and r["rule"] == "challenger >= champion - 0.250"
    assert r["detail"] == (
        "challenger 0.500 vs champion 0.750 on 4 rows (rule: challenger >= champion - 0.250): pass"
    )
    assert judge_suite("s", [T, T, F, F], [T, T, T, F], tolerance=0.2)["passed"] is False


def test_default_rule_is_no_loss_against_the_champion():
    assert judge_suite("s", [T, F], [F, T])["passed"] is True  # a tie keeps the suite
    assert judge_suite("s", [F, F], [F, T])["passed"] is False


def test_threshold_replaces_the_comparison():
    r = judge_suite("s", [T, T, T, F], [T, T, T, T], min_accuracy=0.75)
    assert r["passed"] is True and r["rule"] == "challenger >= 0.750"
    assert judge_suite("s", [T, F, F, F], None, min_accuracy=0.3)["passed"] is False


def test_first_model_without_threshold_is_reported_not_judged():
    r = judge_suite("s", [T, F], None)
    assert r["passed"] is True and r["champion"] is None
    assert r["rule"].startswith("no champion to compare with")


def test_missing_rows_and_training_overlap_are_said():
    r = judge_suite("s", [T, T], [T, F], expected=5, trained_on=1)
    assert r["missing"] == 3 and r["trained_on"] == 1
    assert r["detail"].endswith(
        "; 3 of its 5 rows have no labeled example any more"
        "; 1 of its rows are in the challenger's training split"
    )


def test_a_suite_with_no_row_left_fails():
    r = judge_suite("s", [], [], expected=4)
    assert (r["n"], r["challenger"], r["passed"]) == (0, None, False)
    assert r["detail"].startswith("none of its 4 rows is among the labeled examples")


def test_bad_rules_and_shapes():
    with pytest.raises(ValueError, match="tolerance"):
        judge_suite("s", [T], [T], tolerance=2)
    with pytest.raises(ValueError, match="min_accuracy"):
        judge_suite("s", [T], [T], min_accuracy=-0.1)
    with pytest.raises(ValueError, match="score both models"):
        judge_suite("s", [T, T], [T])


def test_run_suites_scores_both_models_on_each_suites_rows():
    labeled = {"a": 0, "b": 1, "c": 1}  # request id -> class; "z" has no labeled example

    def rows(ids):
        kept = [i for i in ids if i in labeled]
        x = np.array([[ord(i)] for i in kept], dtype=float).reshape(len(kept), 1)
        return kept, x, np.array([labeled[i] for i in kept])

    def always(cls):
        return lambda x: np.tile(np.eye(2)[cls], (len(x), 1))

    suites = [
        {"name": "ones", "request_ids": ["b", "c", "z"], "required": True},
        {"name": "gone", "request_ids": ["z"], "min_accuracy": 0.5},
    ]
    out = run_suites(suites, rows, always(1), always(0), train_ids=["c"])
    assert [(s["name"], s["n"], s["challenger"], s["champion"], s["passed"]) for s in out] == [
        ("ones", 2, 1.0, 0.0, True),
        ("gone", 0, None, None, False),
    ]
    assert out[0]["missing"] == 1 and out[0]["trained_on"] == 1 and out[0]["required"]
    first = run_suites(suites[:1], rows, always(0), None)
    assert first[0]["champion"] is None and first[0]["challenger"] == 0.0


def test_docstring_examples():
    import doctest

    from evaluation import suites

    result = doctest.testmod(suites)
    assert result.attempted > 0 and result.failed == 0
