"""Dataset formation: which labeled rows a retrain learns from."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from retrain.dataset_policy import select_rows


def _table() -> pa.Table:
    day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "request_id": ["s1", "s2", "a", "b", "c", "d", "e"],
            "ts": [
                day,
                day,
                day + dt.timedelta(hours=5),
                day + dt.timedelta(hours=1),
                day + dt.timedelta(hours=3),
                day + dt.timedelta(hours=3),
                day + dt.timedelta(hours=2),
            ],
            "source": [
                "seed",
                "seed",
                "labelstudio",
                "labelstudio",
                "feedback",
                "labelstudio",
                None,
            ],
        }
    )


def test_all_keeps_every_row_including_seed() -> None:
    t = _table()
    assert select_rows(t, "all", 2).equals(t)


def test_window_keeps_the_most_recent_non_seed_rows_oldest_first() -> None:
    assert select_rows(_table(), "window", 3)["request_id"].to_pylist() == ["c", "d", "a"]
    assert select_rows(_table(), "window", 4)["request_id"].to_pylist() == ["e", "c", "d", "a"]
    assert select_rows(_table(), "window", 100).num_rows == 5  # seed rows never enter a window


def test_window_with_tied_timestamps_is_reproducible() -> None:
    # c and d share a timestamp: the window of 2 takes a and the first of them in table order
    assert select_rows(_table(), "window", 2)["request_id"].to_pylist() == ["c", "a"]


def test_errors_name_the_fix() -> None:
    with pytest.raises(
        ValueError, match=r"dataset policy 'recent' is unknown: use one of \['all', 'window'\]"
    ):
        select_rows(_table(), "recent", 10)
    with pytest.raises(ValueError, match="window_rows = 0"):
        select_rows(_table(), "window", 0)
    with pytest.raises(ValueError, match="no column 'source'"):
        select_rows(_table().drop_columns(["source"]), "window", 2)


def test_eval_sides_audit_to_eval_seed_by_hash_groups_on_one_side() -> None:
    from retrain.dataset_policy import eval_sides

    keys = ["g:1", "g:1", "g:1", "g:2", "g:2", "seed-a", "seed-b", "r9"]
    kinds = ["other", "audit", "feedback", "other", "other", "seed", "seed", "audit"]
    test = [False, False, False, True, True, True, False, False]
    sides, new = eval_sides(keys, kinds, {}, test, True)
    # g:1 has an audit row: all of it eval, but its feedback row is in neither set
    # g:2 was picked on purpose only, and its hash says test: eval too
    assert sides == ["eval", "eval", "out", "eval", "eval", "eval", "train", "eval"]
    assert new == {"g:1": "eval", "g:2": "eval", "seed-a": "eval", "seed-b": "train", "r9": "eval"}
    test = [False, False, False, False, False, True, False, False]
    sides, new = eval_sides(keys, kinds, {}, test, True)
    assert sides[3:5] == ["train", "train"] and new["g:2"] == "train"  # hash says train


def test_eval_sides_never_move_a_decided_group() -> None:
    from retrain.dataset_policy import eval_sides

    # g:5 trained before: a later audit row of it trains too (it would leak a known source)
    sides, new = eval_sides(["g:5", "g:6"], ["audit", "other"], {"g:5": "train", "g:6": "eval"},
                            [True, False], True)  # fmt: skip
    assert sides == ["train", "eval"] and new == {}


def test_eval_sides_without_audit_to_eval_hash_every_group() -> None:
    from retrain.dataset_policy import eval_sides

    sides, new = eval_sides(["a", "b", "c"], ["audit", "other", "feedback"], {},
                            [False, True, True], False)  # fmt: skip
    assert sides == ["train", "eval", "train"]
    assert new == {"a": "train", "b": "eval", "c": "train"}
    with pytest.raises(ValueError, match="row kind 'x' is unknown"):
        eval_sides(["a"], ["x"], {}, [False], True)
