"""Run a task's expectation tests (invariance, directional, minimum functionality).

Why a runner: one broken expectation must not take the whole report card down with it;
it becomes a failed result that says what went wrong, and the gate refuses on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrain.task import Expectation, ExpectationResult, PredictProba


def _failed(name: str, detail: str) -> ExpectationResult:
    return ExpectationResult(
        name=name, passed=False, value=float("nan"), threshold=float("nan"), detail=detail
    )


def run_expectations(
    expectations: Sequence[Expectation],
    predict_proba: PredictProba,
    x: np.ndarray,
    y: np.ndarray,
) -> list[ExpectationResult]:
    """Run each expectation on (x, y) and return one result per expectation, in order.

    An expectation that raises, or returns something that is not an `ExpectationResult`,
    becomes a failed result (value and threshold NaN) whose `detail` names the error. The
    result carries the expectation's own name, so the card and the gate line up.
    """
    results: list[ExpectationResult] = []
    for exp in expectations:
        try:
            res = exp.run(predict_proba, x, y)
        except Exception as exc:  # a broken test is a failed test, not a crashed card
            results.append(_failed(exp.name, f"raised {type(exc).__name__}: {exc}"))
            continue
        if not isinstance(res, ExpectationResult):
            results.append(
                _failed(
                    exp.name,
                    f"returned {type(res).__name__}, not an ExpectationResult: fix its run()",
                )
            )
            continue
        results.append(
            ExpectationResult(
                name=exp.name,
                passed=bool(res.passed),
                value=float(res.value),
                threshold=float(res.threshold),
                detail=str(res.detail),
            )
        )
    return results
