"""Curation picks exactly known rows of a hand-made log: `pick(ranked_candidates(...))`, the
one path every driver takes (DuckDB draws and ranks, `pick` applies the budget rule)."""

from __future__ import annotations

import doctest
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

import curation.sampling as sampling
from curation.rules import CurationRules
from curation.sampling import entropy_scores, least_confidence, margin_scores, pick
from storage.home import DataHome, StorageError
from storage.label_log import LabelEvent, LabelLog
from storage.log_views import PICKS_SCHEMA
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries
from storage.queue_log import QueueLog

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


CLASSES = ["x", "y", "z"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def log(home: DataHome, ids: list[str], start: int = 0, role: str = "champion") -> None:
    table = make_batch(
        request_ids=ids, features=np.zeros((len(ids), 2)), probs=np.array([ROWS[i] for i in ids]),
        classes=CLASSES, model_version="v0001", role=role,
        ts=[T0 + timedelta(minutes=start + i) for i in range(len(ids))],
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)


@pytest.fixture
def queries(tmp_path) -> Queries:
    """The six rows of ROWS, logged as champion predictions a..f one minute apart."""
    home = DataHome(tmp_path / "home")
    log(home, list(ROWS))
    return Queries(home)


def picks(q: Queries, budget: int, strategy: str = "margin", share: float = 0.2, seed: int = 0,
          window: int | None = None) -> pa.Table:  # fmt: skip
    """What every driver runs: `pick(ranked_candidates(...), budget, rules)`."""
    rules = CurationRules(strategy=strategy, audit_share=share)
    ranked = q.ranked_candidates(window, strategy, budget, seed, share)
    return pick(ranked, budget, rules)


def ids(t: pa.Table) -> tuple[str, ...]:
    return tuple(t["request_id"].to_pylist())


def reasons(t: pa.Table) -> tuple[str, ...]:
    return tuple(t["reason"].to_pylist())


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
def test_top_uncertainty_without_audit(queries, strategy, expected):
    out = picks(queries, 3, strategy, share=0.0)
    assert out.schema.remove_metadata() == PICKS_SCHEMA
    assert ids(out) == expected
    assert reasons(out) == ("uncertainty",) * 3
    assert out.schema.metadata == {b"eligible": b"6"}


def test_scores_are_the_logged_uncertainties(queries):
    out = picks(queries, 6, "least_confidence", share=0.0)
    assert ids(out) == ("d", "b", "c", "f", "e", "a")
    assert out["score"].to_pylist() == pytest.approx([0.64, 0.60, 0.50, 0.40, 0.30, 0.10])
    out = picks(queries, 2, "entropy", share=0.0)
    assert out["score"].to_pylist() == pytest.approx([1.0974, 1.0805], abs=1e-3)


@pytest.mark.parametrize(
    ("seed", "share", "expected", "why"),
    [
        # the audit order of seed 0 is d, f, a, ...; of seed 1 b, f, d, ...; of seed 3 c, a, b
        (0, 0.2, ("d", "b", "c"), ("audit", "uncertainty", "uncertainty")),
        (0, 0.5, ("d", "f", "b"), ("audit", "audit", "uncertainty")),
        (0, 1.0, ("d", "f", "a"), ("audit",) * 3),
        (1, 0.2, ("b", "d", "c"), ("audit", "uncertainty", "uncertainty")),
        (1, 0.5, ("b", "f", "d"), ("audit", "audit", "uncertainty")),
        (3, 0.2, ("c", "d", "b"), ("audit", "uncertainty", "uncertainty")),
        (3, 0.5, ("c", "a", "d"), ("audit", "audit", "uncertainty")),
    ],
)
def test_audit_first_then_top_uncertainty_skipping_audit_picks(queries, seed, share, expected, why):
    out = picks(queries, 3, "least_confidence", share=share, seed=seed)
    assert (ids(out), reasons(out)) == (expected, why)


def test_every_audit_draw_is_a_prefix_of_one_seeded_order(queries):
    order = ids(picks(queries, 6, share=1.0, seed=0))
    assert order == ("d", "f", "a", "c", "e", "b")
    for budget in range(7):
        assert ids(picks(queries, budget, share=1.0, seed=0)) == order[:budget]


def test_result_does_not_depend_on_row_order(tmp_path, queries):
    home = DataHome(tmp_path / "shuffled")
    log(home, ["f", "c", "a"], start=0)
    log(home, ["e", "b", "d"], start=3)
    other = Queries(home)
    for strategy in ("least_confidence", "margin", "entropy", "random"):
        for seed in range(5):
            a = picks(queries, 4, strategy, share=0.5, seed=seed)
            assert a.equals(picks(other, 4, strategy, share=0.5, seed=seed))


@pytest.mark.parametrize(
    ("budget", "share", "n_audit"),
    [(0, 0.2, 0), (1, 0.2, 0), (2, 0.2, 1), (5, 0.2, 1), (5, 0.5, 2), (6, 0.5, 3), (4, 1.0, 4),
     (4, 0.0, 0)],
)  # fmt: skip
def test_audit_count(queries, budget, share, n_audit):
    out = picks(queries, budget, share=share, seed=3)
    assert out.num_rows == budget == len(set(ids(out)))
    assert (
        reasons(out).count("audit")
        == n_audit
        == CurationRules(audit_share=share).audit_count(budget)
    )


def test_audit_draw_is_uniform_over_all_candidates(tmp_path):
    # 300 rows, uncertainty rising with the id: the audit draw ignores it, so each fifth of
    # the ranking holds about a fifth of the 60 audit picks (12 expected, sd ~3.1)
    home = DataHome(tmp_path / "home")
    top = np.linspace(0.99, 0.35, 300)
    probs = np.stack([top, (1 - top) / 2, (1 - top) / 2], axis=1)
    rids = [f"r{i:03d}" for i in range(300)]
    table = make_batch(
        request_ids=rids, features=np.zeros((300, 2)), probs=probs, classes=CLASSES,
        model_version="v0001", role="champion", ts=[T0 + timedelta(seconds=i) for i in range(300)],
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)
    q = Queries(home)
    for seed in range(3):
        drawn = picks(q, 60, "least_confidence", share=1.0, seed=seed)
        fifths = Counter(int(r[1:]) // 60 for r in ids(drawn))
        assert sorted(fifths) == [0, 1, 2, 3, 4] and all(4 <= c <= 20 for c in fifths.values())
    assert ids(picks(q, 5, "least_confidence", share=0.0)) == tuple(rids[-5:][::-1])


def test_budget_larger_than_candidates_takes_each_eligible_row_once(tmp_path):
    home = DataHome(tmp_path / "home")
    log(home, list(ROWS))
    log(home, ["a"], start=10)  # "a" logged twice
    log(home, ["e"], start=11, role="shadow")  # another role: its own copy never counts
    QueueLog(home).append(["b"], "uncertainty")
    LabelLog(home).append([LabelEvent("c", "x", "feedback", "ann", ts=T0)], CLASSES)
    out = picks(Queries(home), 50, "entropy", share=0.2)
    # audit pick d (the first of a, d, e, f in seed 0's order), then the rest by entropy
    assert ids(out) == ("d", "f", "e", "a")
    assert reasons(out) == ("audit", "uncertainty", "uncertainty", "uncertainty")
    assert out.schema.metadata == {b"eligible": b"4"}


def test_window_keeps_the_newest_rows(queries):
    assert sorted(ids(picks(queries, 6, share=0.0, window=3))) == ["d", "e", "f"]


def test_random_strategy_is_seeded(queries):
    out = picks(queries, 4, "random", share=0.25, seed=0)
    assert (ids(out), reasons(out)) == (("d", "f", "a", "c"), ("audit",) + ("random",) * 3)
    assert ids(picks(queries, 4, "random", share=0.25, seed=2)) == ("d", "a", "b", "e")


def test_budget_zero_and_an_empty_log(tmp_path, queries):
    assert picks(queries, 0).num_rows == 0
    empty = Queries(DataHome(tmp_path / "empty"))
    out = picks(empty, 5)
    assert out.num_rows == 0 and out.schema.metadata == {b"eligible": b"0"}


def test_shown_counts_what_a_labeler_cannot_see(tmp_path):
    home = DataHome(tmp_path / "home")
    table = make_batch(
        request_ids=["a", "b", "c"], features=np.zeros((3, 2)),
        probs=np.array([ROWS[i] for i in "abc"]), classes=CLASSES, model_version="v0001",
        role="champion", ts=[T0 + timedelta(minutes=i) for i in range(3)],
        inputs=[b"png", None, b"png"],
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)
    q = Queries(home)
    ranked = q.ranked_candidates(None, "margin", 5, 0, 0.0, shown="input")
    out = pick(ranked, 5, CurationRules(audit_share=0.0))
    assert ids(out) == ("c", "a")
    assert out.schema.metadata == {b"eligible": b"2", b"not_shown": b"1"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, "bald", 2, 0, 0.2), "strategy = 'bald' is unknown"),
        ((None, "margin", -1, 0, 0.2), "budget = -1"),
        ((None, "margin", 2.5, 0, 0.2), "budget = 2.5"),
        ((None, "margin", 2, 0, 1.5), r"audit_share = 1.5 must be within \[0, 1\]"),
        ((-1, "margin", 2, 0, 0.2), "window_rows"),
    ],
)
def test_clear_errors(queries, args, message):
    with pytest.raises(StorageError, match=message):
        queries.ranked_candidates(*args)
    with pytest.raises(StorageError, match="shown = 'eyes'"):
        queries.ranked_candidates(None, "margin", 2, shown="eyes")
    with pytest.raises(ValueError, match="budget = -1"):
        pick(queries.ranked_candidates(None, "margin", 2), -1, CurationRules())


def test_doctests():
    assert doctest.testmod(sampling).failed == 0
