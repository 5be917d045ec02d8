"""Diversity and quotas among the uncertainty picks: exact picks on hand-made pools, then the
path every driver takes (`pick(ranked_candidates(..., **pool_args(rules, budget)))`) on a
hand-made log, and the `[curation]` keys' errors."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import curation.diversity as diversity
from curation.diversity import kcenter_greedy, quotas, spread_picks, standardised
from curation.rules import CurationRules
from curation.sampling import pick, pool_args
from flows.config import load_config
from storage.home import DataHome
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries
from storage.queue_log import QueueLog

CLASSES = ["x", "y", "z"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def test_doctests():
    assert doctest.testmod(diversity).failed == 0


def test_kcenter_takes_the_farthest_row_each_time():
    # a cluster of three near-copies at the origin, one row at (10, 0), one at (0, 4)
    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [10.0, 0.0], [0.0, 4.0]])
    assert kcenter_greedy(x, 3, [0, 1, 2, 3, 4]) == [0, 3, 4]
    # the start is the first row of the uncertainty order, not row 0
    assert kcenter_greedy(x, 2, [4, 0, 1, 2, 3]) == [4, 3]
    # n beyond the pool: every row once
    assert sorted(kcenter_greedy(x, 9, [0, 1, 2, 3, 4])) == [0, 1, 2, 3, 4]


def test_kcenter_ties_go_to_the_more_uncertain_row():
    x = np.array([[0.0], [1.0], [-1.0]])  # rows 1 and 2 are both 1.0 from row 0
    assert kcenter_greedy(x, 2, [0, 2, 1]) == [0, 2]
    assert kcenter_greedy(x, 2, [0, 1, 2]) == [0, 1]


def test_rows_without_features_are_taken_last():
    x = np.array([[0.0, 0.0], [np.nan, np.nan], [3.0, 0.0]])
    assert kcenter_greedy(x, 3, [1, 0, 2]) == [0, 2, 1]


def test_standardising_keeps_a_large_unit_field_from_drowning_the_rest():
    # field 0 in thousands (salary), field 1 a 0/1 flag; raw distances follow salary only
    x = np.array([[50_000.0, 0.0], [50_500.0, 1.0], [60_000.0, 0.0], [50_200.0, 1.0]])
    raw = kcenter_greedy(x, 3, [0, 1, 2, 3])
    std = kcenter_greedy(standardised(x), 3, [0, 1, 2, 3])
    assert raw == [0, 2, 1]
    assert std == [0, 2, 1]  # same here: salary 60k is far in both
    y = np.array([[50_000.0, 0.0], [50_100.0, 1.0], [50_150.0, 0.0], [50_050.0, 0.0]])
    # raw: 50_150 is farthest; standardised: the flag (one row in four) counts as much
    assert kcenter_greedy(y, 2, [0, 1, 2, 3]) == [0, 2]
    assert kcenter_greedy(standardised(y), 2, [0, 1, 2, 3]) == [0, 1]


def test_quotas_are_equal_shares_dealt_in_turn():
    strata = ["a"] * 6 + ["b"] * 1 + ["c"] * 3
    order = list(range(10))
    assert quotas(strata, 7, order) == {"a": 3, "b": 1, "c": 3}
    assert quotas(strata, 2, order) == {"a": 1, "b": 1, "c": 0}
    assert quotas(strata, 50, order) == {"a": 6, "b": 1, "c": 3}
    assert quotas(strata, 0, order) == {"a": 0, "b": 0, "c": 0}
    with pytest.raises(ValueError, match="whole number of picks"):
        quotas(strata, -1, order)


def test_spread_picks_with_quotas_and_features():
    scores = [0.99, 0.98, 0.97, 0.50, 0.40, 0.30]
    ids = ["a", "b", "c", "d", "e", "f"]
    strata = ["7", "7", "7", "1", "1", "4"]
    # quotas alone: one per class first, most uncertain first within each
    assert spread_picks(scores, ids, 3, strata=strata) == [0, 3, 5]
    assert spread_picks(scores, ids, 4, strata=strata) == [0, 1, 3, 5]
    # plain top-k when neither is given
    assert spread_picks(scores, ids, 3) == [0, 1, 2]
    # features: a, b, c are near-copies, d is far; k-center skips b and c
    x = np.array([[0, 0], [0, 0.1], [0.1, 0], [5, 5], [0, 0.2], [0.2, 0.2]], float)
    assert spread_picks(scores, ids, 2, features=x) == [0, 3]
    # ties in score go to the smaller request id
    assert spread_picks([0.5, 0.5], ["z", "y"], 1) == [1]


def log(home: DataHome, rows: list[tuple[str, list[float], list[float], str]]) -> None:
    table = make_batch(
        request_ids=[r[0] for r in rows], features=np.array([r[2] for r in rows]),
        probs=np.array([r[1] for r in rows]), classes=CLASSES, model_version="v0001",
        ts=[T0 + timedelta(minutes=i) for i in range(len(rows))],
        attrs=[{"device": r[3]} for r in rows], inputs=[b"png"] * len(rows),
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)


# margin scores (1 - gap): a .99 b .98 c .97 d .95 e .60 f .45; predicted a b e = x, c d = y, f = z
ROWS = [
    ("a", [0.40, 0.39, 0.21], [0.0, 0.0], "s1"),
    ("b", [0.40, 0.38, 0.22], [0.0, 0.1], "s1"),
    ("c", [0.37, 0.40, 0.23], [0.1, 0.0], "s1"),
    ("d", [0.25, 0.40, 0.35], [4.0, 4.0], "s2"),
    ("e", [0.60, 0.20, 0.20], [-4.0, 4.0], "s2"),
    ("f", [0.20, 0.05, 0.75], [0.0, -4.0], "s3"),
]


@pytest.fixture
def queries(tmp_path) -> Queries:
    home = DataHome(tmp_path / "home")
    log(home, ROWS)
    return Queries(home)


def picked(q: Queries, budget: int, **keys) -> list[tuple[str, str]]:
    """The picks over every row, checked to be the same over a window of the 6 rows and
    with only rows a labeler can see (the `choose_window` and `shown` paths the loop takes)."""
    rules = CurationRules(audit_share=0.0, **keys)
    out = []
    for window, shown in ((None, None), (6, "input")):
        ranked = q.ranked_candidates(
            window, rules.strategy, budget, 0, 0.0, shown, **pool_args(rules, budget)
        )
        t = pick(ranked, budget, rules)
        out.append(list(zip(t["request_id"].to_pylist(), t["reason"].to_pylist(), strict=True)))
    assert out[0] == out[1]
    return out[0]


def test_the_log_path_top_k_then_kcenter_then_quotas(queries):
    assert picked(queries, 3) == [("a", "uncertainty"), ("b", "uncertainty"), ("c", "uncertainty")]
    # kcenter over the 2 x 3 = 6 most uncertain: a, then the farthest from it (d and e tie
    # at 2.26 standardised units, d is more uncertain), then e (2.26 from a) over f (1.46)
    got = picked(queries, 3, diversity="kcenter", pool_factor=2)
    assert [r for r, _ in got] == ["a", "d", "e"]
    # pool_factor 1 = the pool is the top 3: kcenter can only reorder a, b, c
    assert sorted(r for r, _ in picked(queries, 3, diversity="kcenter", pool_factor=1)) == [
        "a", "b", "c",
    ]  # fmt: skip
    # quotas per predicted class: a, b = x; c, d = y; e = x; f = z
    assert [r for r, _ in picked(queries, 3, stratify="pred")] == ["a", "c", "f"]
    # quotas per logged attribute (slice): s1, s2, s3 one each
    assert [r for r, _ in picked(queries, 3, stratify="attrs.device")] == ["a", "d", "f"]


def test_audit_picks_are_never_spread_picks_too(queries):
    rules = CurationRules(audit_share=0.5, diversity="kcenter", pool_factor=3)
    ranked = queries.ranked_candidates(None, "margin", 4, 1, 0.5, **pool_args(rules, 4))
    t = pick(ranked, 4, rules)
    ids = t["request_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 4
    assert t["reason"].to_pylist() == ["audit", "audit", "uncertainty", "uncertainty"]


def test_queued_rows_stay_out_of_the_pool(queries):
    QueueLog(queries.home, queries).append(["d"], ["uncertainty"], scores=[0.95])
    got = picked(queries, 3, diversity="kcenter", pool_factor=2)
    assert "d" not in [r for r, _ in got]
    assert got[0][0] == "a"


def test_an_unlogged_attribute_is_one_stratum(queries):
    assert [r for r, _ in picked(queries, 2, stratify="attrs.missing")] == ["a", "b"]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("diversity", "kmeans", "diversity = 'kmeans'"),
        ("pool_factor", 0, "pool_factor = 0"),
        ("stratify", "class", "stratify = 'class'"),
        ("stratify", "attrs.dev'ice", "stratify"),
        ("stratify", "attrs.", "stratify"),
    ],
)
def test_bad_keys_name_the_key_and_the_fix(key, value, says):
    with pytest.raises(ValueError, match=rf"\[curation\] {says}") as err:
        CurationRules(**{key: value})
    assert "use" in str(err.value)
    with pytest.raises(ValueError, match=key):
        load_config(None, overrides={f"curation.{key}": value})


def test_the_shipped_config_reads_the_keys():
    r = load_config(None, overrides={"curation.diversity": "kcenter", "curation.stratify": "pred"})
    assert (r.curation.diversity, r.curation.stratify, r.curation.pool_factor) == (
        "kcenter", "pred", CurationRules().pool_factor,
    )  # fmt: skip
    assert CurationRules(strategy="random", diversity="kcenter").spread is False
