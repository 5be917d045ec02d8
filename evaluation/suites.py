"""Edge-case suites on the report card: named rows a person picked, run on every card.

Why suites: error analysis finds inputs a model must keep handling (a rare device, a class
it used to confuse); a suite turns them into a named check that every later report card
runs, side by side with the champion, and that the gate can require. The pass rule is the
suite's own: the challenger's accuracy on the suite's rows is at least the champion's minus
the suite's `tolerance`, or, when the suite sets `min_accuracy`, at least that threshold.
Judging is pure; the rows and both models' answers are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: accuracy points a challenger may lose to the champion on a suite by default: none
DEFAULT_TOLERANCE = 0.0


def check_rule(tolerance: float, min_accuracy: float | None) -> None:
    """A suite's pass rule, checked once (when it is added and when it is judged)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise ValueError(f"suite tolerance = {tolerance!r}: a number of accuracy points, 0..1")
    if not 0.0 <= float(tolerance) <= 1.0:
        raise ValueError(f"suite tolerance = {tolerance!r}: give a share in 0..1 (0.02 = 2 points)")
    if min_accuracy is not None and (
        isinstance(min_accuracy, bool)
        or not isinstance(min_accuracy, int | float)
        or not 0.0 <= float(min_accuracy) <= 1.0
    ):
        raise ValueError(f"suite min_accuracy = {min_accuracy!r}: give an accuracy in 0..1")


def judge_suite(
    name: str,
    challenger_hits: Sequence[bool] | np.ndarray,
    champion_hits: Sequence[bool] | np.ndarray | None,
    *,
    required: bool = False,
    expected: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    min_accuracy: float | None = None,
    trained_on: int = 0,
) -> dict[str, Any]:
    """One suite's card entry: `{name, required, n, challenger, champion, passed, detail,
    rule, missing, trained_on}` (accuracies; champion None without one).

    `expected` is how many rows the suite holds; rows that are no longer among the labeled
    examples are `missing` and said in the detail. A suite with no row left cannot pass.
    `trained_on` counts the suite's rows in the challenger's training split: a reviewer
    should know when a suite is memorised rather than generalised.

    >>> judge_suite("rare", [True, True, False, True], [True, False, False, True])["detail"]
    'challenger 0.750 vs champion 0.500 on 4 rows (rule: challenger >= champion - 0.000): pass'
    >>> judge_suite("rare", [True, False], None, min_accuracy=0.9)["passed"]
    False
    """
    check_rule(tolerance, min_accuracy)
    ch = np.asarray(challenger_hits, dtype=bool)
    cp = None if champion_hits is None else np.asarray(champion_hits, dtype=bool)
    if cp is not None and cp.shape != ch.shape:
        raise ValueError(
            f"suite {name!r}: {ch.size} challenger answers, {cp.size} champion answers: "
            "score both models on the suite's rows"
        )
    n = int(ch.size)
    expected = n if expected is None else int(expected)
    missing = max(expected - n, 0)
    ch_acc = float(ch.mean()) if n else None
    cp_acc = float(cp.mean()) if cp is not None and n else None
    if min_accuracy is not None:
        rule = f"challenger >= {float(min_accuracy):.3f}"
    elif cp is not None:
        rule = f"challenger >= champion - {float(tolerance):.3f}"
    else:
        rule = "no champion to compare with and no min_accuracy: reported, not judged"
    if n == 0:
        passed = False
        detail = (
            f"none of its {expected} rows is among the labeled examples: cannot be judged "
            "(re-add the suite from rows that have a label)"
        )
    else:
        if min_accuracy is not None:
            passed = ch_acc >= float(min_accuracy) - 1e-12
        elif cp_acc is not None:
            passed = ch_acc >= cp_acc - float(tolerance) - 1e-12
        else:
            passed = True
        versus = f" vs champion {cp_acc:.3f}" if cp_acc is not None else ""
        detail = f"challenger {ch_acc:.3f}{versus} on {n} rows (rule: {rule}): " + (
            "pass" if passed else "FAIL"
        )
        if missing:
            detail += f"; {missing} of its {expected} rows have no labeled example any more"
        if trained_on:
            detail += f"; {trained_on} of its rows are in the challenger's training split"
    return {
        "name": name,
        "required": bool(required),
        "n": n,
        "challenger": ch_acc,
        "champion": cp_acc,
        "passed": bool(passed),
        "detail": detail,
        "rule": rule,
        "missing": missing,
        "trained_on": int(trained_on),
    }


def run_suites(
    suites: Sequence[Mapping[str, Any]],
    rows: Callable[[Sequence[str]], tuple[list[str], np.ndarray, np.ndarray]],
    challenger: Callable[[np.ndarray], np.ndarray],
    champion: Callable[[np.ndarray], np.ndarray] | None,
    train_ids: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Every suite's entry, in the order given. `suites` are stored suites (name,
    request_ids, required, tolerance, min_accuracy); `rows(ids)` returns the labeled rows
    among `ids` as (request ids, model inputs, class indices); `challenger` / `champion`
    are predict_proba functions (champion None for a first model)."""
    train = set(train_ids)
    out = []
    for s in suites:
        ids, x, y = rows(list(s["request_ids"]))
        y = np.asarray(y, dtype=np.int64)
        if len(ids):
            ch_hits = np.asarray(challenger(x)).argmax(axis=1) == y
            cp_hits = np.asarray(champion(x)).argmax(axis=1) == y if champion else None
        else:
            ch_hits, cp_hits = np.zeros(0, bool), (np.zeros(0, bool) if champion else None)
        out.append(
            judge_suite(
                str(s["name"]),
                ch_hits,
                cp_hits,
                required=bool(s.get("required", False)),
                expected=len(s["request_ids"]),
                tolerance=float(s.get("tolerance", DEFAULT_TOLERANCE)),
                min_accuracy=s.get("min_accuracy"),
                trained_on=sum(1 for i in ids if i in train),
            )
        )
    return out
