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
