"""The expectation runner: a broken expectation is a failed result, never a crash."""

from __future__ import annotations

import math

import numpy as np

from evaluation.expectations import run_expectations
from retrain.task import Expectation, ExpectationResult


def _predict(x: np.ndarray) -> np.ndarray:
    return np.tile([0.8, 0.2], (len(x), 1))


def _ok(predict_proba, x, y) -> ExpectationResult:
    share = float(np.mean(predict_proba(x).argmax(1) == y))
    return ExpectationResult("whatever", share >= 0.5, share, 0.5, f"{share:.2f} right")


def _boom(predict_proba, x, y) -> ExpectationResult:
    raise RuntimeError("rotation helper missing")


def test_results_in_order_and_errors_become_failures() -> None:
    exps = [
        Expectation("min-func", "class 0 is easy", _ok),
        Expectation("rotation", "invariant to 10 degrees", _boom),
        Expectation("wrong-type", "returns a float", lambda p, x, y: 0.9),
    ]
    x, y = np.zeros((4, 2)), np.array([0, 0, 0, 1])
    res = run_expectations(exps, _predict, x, y)
    assert [r.name for r in res] == ["min-func", "rotation", "wrong-type"]
    assert res[0] == ExpectationResult("min-func", True, 0.75, 0.5, "0.75 right")
    assert res[1].passed is False
    assert res[1].detail == "raised RuntimeError: rotation helper missing"
    assert math.isnan(res[1].value) and math.isnan(res[1].threshold)
    assert res[2].passed is False and "not an ExpectationResult" in res[2].detail


def test_no_expectations() -> None:
    assert run_expectations([], _predict, np.zeros((1, 2)), np.array([0])) == []
