"""Decoded parts (`storage.part_cache`) and kept connections (`storage.kept_connections`):
a reader with `cache_parts=True` answers every question exactly as one reading the files,
through appends, a log that starts empty, parts of two schemas, and compaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from storage.compaction import compact_log
from storage.home import DataHome
from storage.label_log import LabelEvent, LabelLog
from storage.log_views import connect
from storage.parquet_parts import write_part
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries
from storage.queue_log import QueueLog
from storage.seed import write_seed
from storage.settings import StorageSettings

CLASSES = ["a", "b"]
T0 = datetime(2026, 5, 1, 23, 50, tzinfo=UTC)  # batches cross midnight: two date partitions


def log(home, ids, start, p_a=0.8, version="v0001"):
    n = len(ids)
    table = make_batch(
        request_ids=ids, features=np.arange(n * 2, dtype=float).reshape(n, 2),
        probs=np.array([[p_a - 0.01 * i, 1 - p_a + 0.01 * i] for i in range(n)]),
        classes=CLASSES, model_version=version, role="champion",
        ts=[T0 + timedelta(minutes=start + i) for i in range(n)], inputs=[b"x%d" % i for i in range(n)],
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)


def label(home, rid, lab, minute, annotator="ann1"):
    event = LabelEvent(rid, lab, "labelstudio", annotator, ts=T0 + timedelta(minutes=minute))
    LabelLog(home).append([event], CLASSES)


def answers(q: Queries) -> dict:
    """Every question the loop asks, as plain values."""
    return {
        "count": q.count_predictions(),
        "count_v1": q.count_predictions("v0001"),
        "recent": q.recent_predictions(7).to_pylist(),
        "first": q.first_predictions(3, columns=["request_id", "ts"]).to_pylist(),
        "labeled": q.labeled_examples().to_pylist(),
        "labeled_window": q.labeled_examples(window_rows=2).to_pylist(),
        "audit": q.audit_outcomes(10).to_pylist(),
        "queued": q.queued().to_pylist(),
        "queued_unlabeled": q.queued(unlabeled_only=True).to_pylist(),
        "pending": q.pending_labels(),
        "label_counts": q.label_counts(),
        "frame": q.prediction_frame(["r05", "r01", "ghost", "r05"]).to_pylist(),
        "known": q.known_request_ids(["r01", "s1", "ghost"]),
        "candidates": q.candidates(20).to_pylist(),
        "ranked": sorted(  # rows in no set order: `pick` orders them
            q.ranked_candidates(20, "margin", 3, 7, 0.34, "input").to_pylist(),
            key=lambda r: (r["kind"], r["request_id"] or ""),
        ),
        "window": sorted(
            r["request_id"]
            for b in q.window_batches(
                6, role="champion", sample_rows=4, seed=3, columns=("request_id", "pred")
            )
            for r in b.to_pylist()
        ),
        "queued_ids": q.queued_ids(),
        "seed_ids": q.seed_ids(),
    }


@pytest.fixture
def home(tmp_path) -> DataHome:
    return DataHome(tmp_path / "home")


def test_cached_reader_answers_as_the_files_through_appends(home):
    plain, cached = Queries(home), Queries(home, cache_parts=True)
    assert answers(cached) == answers(plain)  # nothing logged yet: empty answers alike
    write_seed(home, ["s1"], np.zeros((1, 2)), [b"seed"], ["a"])
    log(home, [f"r{i:02d}" for i in range(6)], start=0)  # 23:50.. : date=2026-05-01
    log(home, [f"r{i:02d}" for i in range(4, 12)], start=8)  # copies r04, r05; crosses midnight
    first = answers(cached)
    assert first == answers(plain)
    assert first["count"] == 12 and first["frame"][0]["request_id"] == "r05"
    QueueLog(home).append(["r02", "r07", "r09"], ["audit", "uncertainty", "audit"])
    label(home, "r02", "a", 30)
    label(home, "r07", "b", 31)
    label(home, "r07", "a", 32, annotator="ann2")  # disagreement, latest wins
    log(home, ["r12", "r13"], start=40, version="v0002")
    second = answers(cached)
    assert second == answers(plain)
    assert second["pending"] == 1 and second["count_v1"] == 12
    assert [r["label"] for r in second["labeled"]] == ["a", "a", "a"]  # seed s1, r02, r07
    assert len(cached.parts) == len(list(home.root.rglob("*.parquet")))  # every part, once
    with pytest.raises(Exception, match="whole number"):
        cached.recent_predictions(-1)  # an error on the way leaves the reader usable
    assert answers(cached) == second


def test_raw_rows_are_those_read_parquet_gives(home):
    log(home, ["r1", "r2", "r3"], start=0)
    log(home, ["r3", "r4"], start=9)
    q = Queries(home, cache_parts=True)
    sql = "SELECT * FROM predictions_raw ORDER BY file_index, file_row_number"
    read = connect(home, "predictions", database=q.database)
    held = connect(home, "predictions", database=q.database, parts=q.parts)
    try:
        a, b = read.sql(sql).to_arrow_table(), held.sql(sql).to_arrow_table()
    finally:
        read.close()
        held.close()
    assert a.column_names == b.column_names  # file columns, row number, filename, date, index
    assert a.to_pylist() == b.to_pylist()
    assert b["file_index"].to_pylist() == [0, 0, 0, 1, 2]  # r4 logged after midnight: a part
    assert len({*b["date"].to_pylist()}) == 2


def test_parts_of_two_schemas_fall_back_to_reading_the_files(home):
    log(home, ["r1"], start=0)
    old = make_batch(request_ids=["r0"], features=np.zeros((1, 2)), probs=np.array([[0.5, 0.5]]),
                     classes=CLASSES, model_version="v0000", ts=T0 - timedelta(days=1))  # fmt: skip
    write_part(old.drop_columns(["input_uri"]), home.predictions / "date=2026-04-30")
    cached = Queries(home, cache_parts=True)
    files = sorted(str(p) for p in home.predictions.rglob("*.parquet"))
    assert cached.parts.raw_table("predictions", files) is None  # union_by_name: not reproduced
    got = cached.first_predictions(2)
    assert got["request_id"].to_pylist() == ["r0", "r1"]
    assert got["input_uri"].to_pylist() == [None, None]
    assert answers(cached) == answers(Queries(home))


def test_compaction_swaps_the_parts_held(home):
    for k in range(4):
        log(home, [f"r{k}{i}" for i in range(3)], start=20 * k)
    label(home, "r00", "a", 90)
    cached = Queries(home, cache_parts=True, settings=StorageSettings(threads=1))
    before = answers(cached)
    held = len(cached.parts)
    settings = StorageSettings(compact_min_age_s=0, compact_grace_s=0, compact_min_parts=2)
    report = compact_log(home, "predictions", settings)
    assert report.parts_merged == 3 and report.files_after == 2  # 05-01: one part; 05-02: 3
    after = answers(cached)
    assert after == before == answers(Queries(home))
    assert len(cached.parts) < held  # the merged sources are no longer held
