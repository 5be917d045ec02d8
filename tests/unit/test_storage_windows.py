"""`choose_window` (the newest or oldest n rows of the deduplicated log, in memory of the
window's size) gives exactly what the dedup view then ORDER BY ... LIMIT gives, also when
most of the newest raw rows are later copies of older ids (its top-k must grow)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storage.home import DataHome
from storage.log_views import choose_window, connect, first_per_request
from storage.prediction_log import PredictionLog, make_batch

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def log(home, ids, start_s, role="champion", version="v1"):
    n = len(ids)
    table = make_batch(
        request_ids=ids, features=np.zeros((n, 2)), probs=np.tile([0.7, 0.3], (n, 1)),
        classes=["a", "b"], model_version=version, role=role,
        ts=[T0 + timedelta(seconds=start_s + i) for i in range(n)],
    )  # fmt: skip
    PredictionLog(home).append(table, ["a", "b"])


@pytest.fixture
def home(tmp_path) -> DataHome:
    home = DataHome(tmp_path / "home")
    log(home, [f"r{i:05d}" for i in range(3000)], 0)
    log(home, [f"s{i:05d}" for i in range(200)], 3000, role="shadow")
    # a retry storm: the last 2,500 ids logged again, later, by another version
    log(home, [f"r{i:05d}" for i in range(500, 3000)], 10_000, version="v2")
    log(home, [f"r{i:05d}" for i in range(2990, 3000)], 20_000, version="v3")
    return home


@pytest.mark.parametrize("newest", [True, False])
@pytest.mark.parametrize("n", [0, 1, 100, 2000, 2999, 5000])
@pytest.mark.parametrize("where", ["TRUE", "role = 'champion'", "model_version = 'v2'"])
def test_choose_window_equals_the_dedup_view(home, newest, n, where):
    order = "DESC" if newest else "ASC"
    con = connect(home, "predictions")
    try:
        got = choose_window(con, n, newest, where)
        chosen = con.execute(
            f"SELECT request_id, ts FROM chosen ORDER BY ts {order}, request_id {order}"
        ).fetchall()
        keys = first_per_request("request_id, ts, role, model_version, file_index, file_row_number")
        expected = con.execute(
            f"SELECT request_id, ts FROM ({keys}) WHERE {where} "
            f"ORDER BY ts {order}, request_id {order} LIMIT {n}"
        ).fetchall()
    finally:
        con.close()
    assert chosen == expected and got == len(expected)
    if where == "model_version = 'v2'":
        assert not expected  # every v2 row is a later copy: none is ever seen
