"""Samplers pick exactly known rows on a hand-made table."""

from __future__ import annotations

import doctest
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

import curation.sampling as sampling
from curation.sampling import (
    Selection,
    entropy_scores,
    least_confidence,
    margin_scores,
    select,
)

# uncertainty ranks, worked out by hand:
#   least confidence  d .64  b .60  c .50  f .40  e .30  a .10
#   margin (1 - gap)  c .99  d .97  b .95  f .70  e .50  a .15
#   entropy (nats)    d 1.097  b 1.081  f .898  e .802  c .742  a .394
ROWS = {
    "a": [0.90, 0.05, 0.05],
    "b": [0.40, 0.35, 0.25],
    "c": [0.50, 0.49, 0.01],
    "d": [0.36, 0.33, 0.31],
    "e": [0.70, 0.20, 0.10],
    "f": [0.60, 0.30, 0.10],
}


def table(rows: dict[str, list[float]] = ROWS, order: list[str] | None = None) -> pa.Table:
    ids = order or list(rows)
    return pa.table(
        {
            "request_id": pa.array(ids, pa.string()),
            "probs": pa.array([rows[i] for i in ids], pa.list_(pa.float32())),
        }
    )


def test_scores_by_hand():
    p = np.array([ROWS["c"], ROWS["d"]])
    np.testing.assert_allclose(least_confidence(p), [0.50, 0.64], atol=1e-12)
    np.testing.assert_allclose(margin_scores(p), [0.99, 0.97], atol=1e-12)
    expected = [-sum(x * np.log(x) for x in row) for row in p]
    np.testing.assert_allclose(entropy_scores(p), expected, atol=1e-12)
    assert entropy_scores(np.array([[1.0, 0.0]])).tolist() == [0.0]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("least_confidence", ("d", "b", "c")),
        ("margin", ("c", "d", "b")),
        ("entropy", ("d", "b", "f")),
    ],
)
def test_top_uncertainty_without_audit(strategy, expected):
    sel = select(table(), budget=3, strategy=strategy, audit_share=0.0)
    assert sel.request_ids == expected
    assert sel.reasons == ("uncertainty",) * 3
    assert list(sel.scores) == sorted(sel.scores, reverse=True)


def test_scores_returned_are_the_strategy_scores():
    sel = select(table(), budget=2, strategy="least_confidence", audit_share=0.0)
    np.testing.assert_allclose(sel.scores, [0.64, 0.60], atol=1e-6)


def test_excluded_ids_are_never_picked():
    sel = select(table(), budget=2, strategy="least_confidence", audit_share=0.0, exclude={"d"})
    assert sel.request_ids == ("b", "c")
    for seed in range(20):
        sel = select(table(), 5, "margin", audit_share=0.4, seed=seed, exclude=["a", "c"])
        assert not {"a", "c"} & set(sel.request_ids)


def test_ties_go_to_the_smaller_request_id():
    rows = {"y": [0.5, 0.5], "x": [0.5, 0.5], "z": [0.9, 0.1]}
    sel = select(table(rows), budget=1, strategy="margin", audit_share=0.0)
    assert sel.request_ids == ("x",)
    sel = select(table(rows, order=["z", "y", "x"]), budget=2, strategy="entropy", audit_share=0.0)
    assert sel.request_ids == ("x", "y")


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        # ids sorted a..f; default_rng(seed).permutation(6)[0] is the audit pick
        (0, ("d", "b", "c")),  # permutation starts with 3: "d", the most uncertain row
        (1, ("e", "d", "b")),  # starts with 4: "e", a row uncertainty sampling would not pick
        (3, ("c", "d", "b")),  # starts with 2: "c"
    ],
)
def test_audit_first_then_uncertainty_known_rows(seed, expected):
    sel = select(table(), budget=3, strategy="least_confidence", audit_share=0.2, seed=seed)
    assert sel.request_ids == expected
    assert sel.reasons == ("audit", "uncertainty", "uncertainty")


def test_result_does_not_depend_on_row_order():
    shuffled = ["f", "c", "a", "e", "b", "d"]
    for strategy in ("least_confidence", "margin", "entropy", "random"):
        for seed in range(5):
            a = select(table(), 4, strategy, audit_share=0.5, seed=seed)
            b = select(table(order=shuffled), 4, strategy, audit_share=0.5, seed=seed)
            assert a == b


@pytest.mark.parametrize(
    ("budget", "share", "n_audit"),
    [
        (0, 0.2, 0),
        (1, 0.2, 0),
        (2, 0.2, 1),
        (5, 0.2, 1),
        (5, 0.5, 2),
        (6, 0.5, 3),
        (4, 1.0, 4),
        (4, 0.0, 0),
    ],
)
def test_audit_count(budget, share, n_audit):
    sel = select(table(), budget=budget, strategy="margin", audit_share=share, seed=3)
    assert len(sel) == budget
    assert sel.reasons.count("audit") == n_audit
    assert len(set(sel.request_ids)) == budget


def test_audit_draw_is_uniform_over_all_candidates():
    # even the most uncertain row is as likely as any other to be the audit pick
    counts = Counter(
        select(table(), budget=2, strategy="least_confidence", audit_share=0.5, seed=s).ids_for(
            "audit"
        )[0]
        for s in range(1200)
    )
    assert set(counts) == set(ROWS)
    assert all(140 <= c <= 260 for c in counts.values()), counts


def test_budget_larger_than_candidates_takes_all_once():
    rows = {**ROWS}
    t = pa.concat_tables([table(rows), table({"a": ROWS["a"]})])  # "a" logged twice
    sel = select(t, budget=50, strategy="entropy", audit_share=0.2, exclude={"b"})
    assert sorted(sel.request_ids) == ["a", "c", "d", "e", "f"]


def test_random_strategy_is_seeded():
    a = select(table(), budget=4, strategy="random", audit_share=0.25, seed=7)
    assert a == select(table(), budget=4, strategy="random", audit_share=0.25, seed=7)
    assert a.reasons == ("audit", "random", "random", "random")
    picks = {select(table(), 4, "random", 0.25, seed=s).request_ids for s in range(10)}
    assert len(picks) > 1


def test_precomputed_columns_when_probs_are_absent():
    t = pa.table(
        {"request_id": ["p", "q", "r"], "confidence": pa.array([0.9, 0.4, 0.6], pa.float32())}
    )
    assert select(t, 2, "least_confidence", audit_share=0.0).request_ids == ("q", "r")
    with pytest.raises(ValueError, match="'margin'"):
        select(t, 2, "margin", audit_share=0.0)


def test_empty_candidates():
    t = table().slice(0, 0)
    assert select(t, 5, "margin") == Selection((), (), ())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": -1}, "budget = -1 is negative"),
        ({"budget": 2.5}, "budget = 2.5 must be an integer"),
        ({"strategy": "bald"}, "strategy = 'bald' is unknown"),
        ({"audit_share": 1.5}, r"audit_share = 1.5 must be within \[0, 1\]"),
        ({"audit_share": -0.1}, "audit_share = -0.1"),
    ],
)
def test_clear_errors(kwargs, message):
    args = {"budget": 2, "strategy": "margin", **kwargs}
    with pytest.raises(ValueError, match=message):
        select(table(), **args)


def test_bad_tables_are_named():
    with pytest.raises(ValueError, match="no 'request_id'"):
        select(pa.table({"id": ["a"], "probs": [[0.5, 0.5]]}), 1, "margin")
    ragged = pa.table({"request_id": ["a", "b"], "probs": [[0.5, 0.5], [0.2, 0.3, 0.5]]})
    with pytest.raises(ValueError, match="full probability vector"):
        select(ragged, 1, "margin")
    nulls = pa.table({"request_id": ["a", None], "probs": [[0.5, 0.5], [0.2, 0.8]]})
    with pytest.raises(ValueError, match="request_id has nulls"):
        select(nulls, 1, "margin")


def test_doctests():
    assert doctest.testmod(sampling).failed == 0
