"""BufferedPredictionLog: same rows as make_batch + append, written in the background,
nothing lost on close or after a failed write."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import storage.buffered_log as buffered_log
from storage.buffered_log import BufferedPredictionLog
from storage.home import DataHome, StorageError
from storage.prediction_log import make_batch
from storage.queries import Queries

CLASSES = ["a", "b", "c"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def home(tmp_path) -> DataHome:
    return DataHome(tmp_path / "home")


def rows(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"r{i:03d}" for i in range(n)]
    return ids, rng.random((n, 4)), rng.dirichlet([1, 1, 1], n)


def test_same_table_as_make_batch(home):
    ids, x, p = rows(5)
    stamps = [T0 + timedelta(seconds=i) for i in range(5)]
    attrs = [{"phase": "0"}, None, {"phase": "1"}, None, None]
    with BufferedPredictionLog(home, CLASSES, "v0007", flush_seconds=60) as blog:
        blog.log(ids[:2], x[:2], p[:2], ts=stamps[:2], inputs=[b"x", None], attrs=attrs[:2])
        for i in range(2, 5):  # one at a time, as a server would
            blog.log(ids[i], x[i], p[i], ts=stamps[i], attrs=[attrs[i]])
        assert blog.rows_written == 0  # nothing yet: below flush_rows and flush_seconds
    assert blog.rows_written == 5
    got = Queries(home).recent_predictions(10)
    expected = make_batch(request_ids=ids, features=x, probs=p, classes=CLASSES,
                          model_version="v0007", ts=stamps,
                          inputs=[b"x", None, None, None, None], attrs=attrs)  # fmt: skip
    for name in expected.column_names:
        assert got[name].equals(expected[name]), name


def test_background_flush_after_flush_rows(home):
    ids, x, p = rows(30)
    blog = BufferedPredictionLog(home, CLASSES, "v1", flush_rows=10, flush_seconds=60)
    blog.log(ids[:25], x[:25], p[:25])
    deadline = time.monotonic() + 10
    while blog.rows_written < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert blog.rows_written == 25 and blog.pending_rows == 0
    blog.log(ids[25:], x[25:], p[25:])
    assert blog.close() in (0, 5) and blog.rows_written == 30
    assert blog.close() == 0  # idempotent
    assert Queries(home).count_predictions() == 30
    with pytest.raises(StorageError, match="closed"):
        blog.log("late", x[0], p[0])


def test_duplicate_ids_in_one_flush_keep_the_first(home):
    ids, x, p = rows(2)
    with BufferedPredictionLog(home, CLASSES, "v1", flush_seconds=60) as blog:
        blog.log("same", x[0], p[0], ts=T0)
        blog.log("same", x[1], p[1], ts=T0 + timedelta(seconds=1))
    got = Queries(home).recent_predictions(5, columns=["request_id", "ts"])
    assert got["ts"].to_pylist() == [T0]


def test_bad_rows_fail_on_the_request_path(home):
    _, x, p = rows(2)
    with BufferedPredictionLog(home, CLASSES, "v1") as blog:
        with pytest.raises(StorageError, match="probs has 2 classes"):
            blog.log("r", x[0], np.array([0.5, 0.5]))
        with pytest.raises(StorageError, match="sums to"):
            blog.log("r", x[0], np.array([0.5, 0.6, 0.1]))
        bad = x[:1].copy()
        bad[0, 1] = np.nan
        with pytest.raises(StorageError, match="NaN or inf"):
            blog.log("r", bad, p[:1])
        with pytest.raises(StorageError, match="non-empty"):
            blog.log(" ", x[0], p[0])
        with pytest.raises(StorageError, match="aware"):
            blog.log("r", x[0], p[0], ts=datetime(2026, 1, 1))
        blog.log("ok", x[0], p[0])
        with pytest.raises(StorageError, match="columns"):
            blog.log("r2", np.zeros((1, 7)), p[:1])
    assert Queries(home).count_predictions() == 1


def test_failed_write_is_raised_and_nothing_is_lost(home, monkeypatch):
    ids, x, p = rows(12)
    real = buffered_log.write_partitioned
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(buffered_log, "write_partitioned", flaky)
    blog = BufferedPredictionLog(home, CLASSES, "v1", flush_rows=5, flush_seconds=0.05)
    blog.log(ids[:6], x[:6], p[:6])
    deadline = time.monotonic() + 10
    while calls["n"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.02)
    with pytest.raises(StorageError, match="disk full"):
        blog.log(ids[6:], x[6:], p[6:])
    blog.log(ids[6:], x[6:], p[6:])  # the error is reported once; logging goes on
    blog.close()
    assert Queries(home).count_predictions() == 12


def test_constructor_checks(home):
    with pytest.raises(StorageError, match="role"):
        BufferedPredictionLog(home, CLASSES, "v1", role="boss")
    with pytest.raises(StorageError, match="flush_rows"):
        BufferedPredictionLog(home, CLASSES, "v1", flush_rows=0)


def test_doctests():
    import doctest

    assert doctest.testmod(buffered_log).failed == 0
