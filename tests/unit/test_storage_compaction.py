"""Compaction on real Parquet files: every reader answers the same before, during (merged
file and its sources both visible) and after; duplicates keep the "first logged" rule;
crashes and concurrent runs leave the log readable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.compaction import compact_log, compacted_from, merge_group, merged_name, sweep
from storage.compaction_plan import Group, PartInfo, describe, plan_groups
from storage.home import DataHome
from storage.label_log import LabelEvent, LabelLog
from storage.log_views import log_files
from storage.parquet_parts import part_stamp, visible_parts, write_part
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries
from storage.queue_log import QueueLog
from storage.settings import StorageSettings

CLASSES = ["a", "b", "c"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
NOW = StorageSettings(compact_min_age_s=0, compact_grace_s=0, compact_min_parts=2)
GRACE = StorageSettings(compact_min_age_s=0, compact_grace_s=3600, compact_min_parts=2)


def log(home, ids, start=0, version="v0001", role="champion", ts=None, seed=0):
    n = len(ids)
    probs = np.random.default_rng(seed).dirichlet([1, 1, 1], n)
    table = make_batch(
        request_ids=ids, features=np.full((n, 2), float(seed)), probs=probs, classes=CLASSES,
        model_version=version, role=role, inputs=[f"in-{seed}".encode()] * n,
        ts=ts or [T0 + timedelta(minutes=start + i) for i in range(n)],
    )  # fmt: skip
    PredictionLog(home).append(table, CLASSES)


BY_KIND = [("kind", "ascending"), ("request_id", "ascending")]  # ranked rows in one order


def answers(home: DataHome) -> dict:
    """What every reader says about the home (the things compaction must not change)."""
    q = Queries(home)
    wide = ["request_id", "ts", "model_version", "features", "input", "probs", "pred"]
    return {
        "count": q.count_predictions(),
        "count_v2": q.count_predictions("v0002"),
        "recent": q.recent_predictions(7, columns=wide).to_pylist(),
        "first": q.first_predictions(5, columns=wide).to_pylist(),
        "candidates": q.candidates(30).to_pylist(),
        "picks": q.ranked_candidates(None, "margin", 6, 2, 0.3).sort_by(BY_KIND).to_pylist(),
        "picks_window": q.ranked_candidates(10, "entropy", 4, 1, 0.25).sort_by(BY_KIND).to_pylist(),
        "frame": q.prediction_frame(["r05", "r00", "r31", "nope"]).to_pylist(),
        "labeled": q.labeled_examples().to_pylist(),
        "queued": q.queued().to_pylist(),
        "pending": q.pending_labels(),
        "audit": q.audit_outcomes(10).to_pylist(),
        "labels": q.label_counts(),
        "annotations": sorted(q.annotation_ids()),
        "window": sorted(
            r["request_id"]
            for b in q.window_batches(12, columns=("request_id",))
            for r in b.to_pylist()
        ),
    }


def raw_rows(folder) -> int:
    return sum(pq.read_metadata(p).num_rows for p in folder.rglob("*.parquet"))


@pytest.fixture
def home(tmp_path) -> DataHome:
    """Twelve prediction parts over two dates, with ids logged twice (a later retry, and a
    same-`ts` copy with other content), a shadow row, queue and label parts."""
    home = DataHome(tmp_path / "home")
    for k in range(10):
        log(home, [f"r{k * 4 + i:02d}" for i in range(4)], start=k * 4, seed=k)
    log(home, ["r03", "r17"], start=100, version="v0002", seed=20)  # retries, later ts
    log(home, ["r09"], ts=[T0 + timedelta(minutes=9)], version="v0002", seed=21)  # same ts
    log(home, ["s1"], start=2000, role="shadow", seed=22)  # next day
    QueueLog(home).append(["r01", "r02"], ["audit", "uncertainty"])
    QueueLog(home).append(["r05"], "audit")
    events = [LabelEvent("r01", "a", "labelstudio", "ann1", ts=T0, ls_annotation_id=1),
              LabelEvent("r05", "b", "feedback", "user", ts=T0)]  # fmt: skip
    LabelLog(home).append(events, CLASSES)
    LabelLog(home).append([LabelEvent("r05", "b", "feedback", "user", ts=T0)], CLASSES)
    LabelLog(home).append([LabelEvent("r01", "b", "labelstudio", "ann1", ts=T0 + timedelta(1),
                                      ls_annotation_id=1)], CLASSES)  # fmt: skip
    return home


def test_compaction_changes_no_answer_and_merges_the_parts(home):
    before = answers(home)
    assert before["count"] == 41 and before["frame"][1]["model_version"] == "v0001"
    rows_before = raw_rows(home.predictions)
    for log_name in ("predictions", "labels", "queue"):
        report = compact_log(home, log_name, NOW)
        assert report.groups >= 1 and report.deleted == report.parts_merged, report
    assert answers(home) == before
    day = home.predictions / "date=2026-05-01"
    files = visible_parts(day)
    assert len(files) == 1 and compacted_from(files[0])[0]  # 12 parts -> one merged file
    assert raw_rows(home.predictions) == rows_before - 3  # the hidden copies are gone
    assert len(visible_parts(home.labels / "date=2026-05-01")) == 1
    assert raw_rows(home.labels) == 3  # the feedback event logged twice is one event
    # a second run finds nothing to do
    again = compact_log(home, "predictions", NOW)
    assert (again.groups, again.deleted, again.files_before) == (0, 0, again.files_after)


def test_during_the_grace_period_sources_and_merged_file_count_once(home):
    before = answers(home)
    rows_before = raw_rows(home.predictions)
    report = compact_log(home, "predictions", GRACE)
    assert report.groups == 1 and report.deleted == 0 and report.waiting_deletion == 12
    assert raw_rows(home.predictions) == rows_before + 40  # sources and merged file
    # readers list the merged file alone (its metadata names the parts it replaces); a
    # reader that listed the parts before still finds them (and dedup hides any overlap)
    assert [Path(f).name for f in log_files(home.predictions)] == [
        visible_parts(home.predictions / "date=2026-05-01")[-2].name,
        visible_parts(home.predictions / "date=2026-05-02")[0].name,
    ]
    assert answers(home) == before
    # no part merged twice while it waits; new parts are merged on their own
    log(home, ["n1", "n2"], start=300, seed=30)
    log(home, ["n3"], start=301, seed=31)
    second = compact_log(home, "predictions", GRACE)
    assert second.groups == 1 and second.parts_merged == 2
    later = sweep(
        home.predictions / "date=2026-05-01", 3600, now=datetime.now(UTC).timestamp() + 3601
    )
    assert later == (14, 0)
    assert Queries(home).count_predictions() == 44
    assert raw_rows(home.predictions) == rows_before - 3 + 3


def test_first_logged_wins_through_compaction(home):
    q = Queries(home)
    # r09 was logged twice at the same ts: the earlier part (v0001) wins, before and after
    assert q.prediction_frame(["r09"])["model_version"].to_pylist() == ["v0001"]
    # a copy with the same ts appended after the merge still loses to the merged row
    compact_log(home, "predictions", NOW)
    log(home, ["r09"], ts=[T0 + timedelta(minutes=9)], version="v0003", seed=40)
    assert q.prediction_frame(["r09"])["model_version"].to_pylist() == ["v0001"]
    compact_log(home, "predictions", NOW)
    assert q.prediction_frame(["r09"])["model_version"].to_pylist() == ["v0001"]


def test_merged_name_sorts_where_its_group_was(tmp_path):
    names = [f"part-2026050{d}T000000000000Z-1-0000000{d}.parquet" for d in range(1, 6)]
    merged = merged_name(tmp_path / names[3])  # group = names[1..3]
    order = sorted([names[0], merged, names[4]] + names[1:4])
    assert order.index(merged) == 3 and order[4] == names[3]
    assert sorted([names[0], merged, names[4]]) == [names[0], merged, names[4]]
    assert part_stamp(merged) == part_stamp(names[3])
    assert merged_name(tmp_path / merged).count("-c") == 1  # no growing suffixes


def test_plan_keeps_groups_adjacent_and_waits_for_young_parts(tmp_path):
    s = StorageSettings(compact_target_mb=1, compact_min_parts=3, compact_min_age_s=60)
    big = 600_000

    def part(i, size, age=100.0):
        return PartInfo(tmp_path / f"p{i:02d}.parquet", size, age)

    parts = [part(0, 10), part(1, 10), part(2, big), part(3, 10), part(4, 10), part(5, 10),
             part(6, 10), part(7, 10, age=5), part(8, 10)]  # fmt: skip
    groups = plan_groups(parts, set(), s)
    assert [[p.name for p in g.sources] for g in groups] == [
        ["p03.parquet", "p04.parquet", "p05.parquet", "p06.parquet"]
    ]
    # groups close at the target size
    sizes = plan_groups([part(i, 400_000) for i in range(7)], set(), s)
    assert [len(g.sources) for g in sizes] == [3, 3]
    assert all(isinstance(g, Group) and g.bytes >= s.target_bytes for g in sizes)
    assert describe([tmp_path / "missing.parquet"], 0.0) == []


def test_crash_after_the_rename_is_finished_by_the_next_run(home):
    """A run killed between publishing the merged file and deleting its sources: readers
    see each row once; the next run deletes the sources and merges nothing twice."""
    before = answers(home)
    day = home.predictions / "date=2026-05-01"
    sources = tuple(visible_parts(day))
    merged, rows_in, rows_out = merge_group(Group(sources, 0), "predictions", NOW)
    assert (rows_in, rows_out) == (43, 40)  # 3 hidden copies dropped
    assert answers(home) == before
    report = compact_log(home, "predictions", NOW)
    assert report.deleted == len(sources) and report.groups == 0
    assert visible_parts(day) == [merged] and answers(home) == before


def test_a_leftover_temp_file_is_removed_and_never_read(home):
    day = home.predictions / "date=2026-05-01"
    (day / ".0badc0de.pid999999.deadhost.parquet.tmp").write_bytes(b"PAR1 half")
    (day / f".0badc0de.pid999999.{_host()}.parquet.tmp").write_bytes(b"PAR1 half")
    before = answers(home)
    compact_log(home, "predictions", NOW)
    assert not any(p.name.endswith(f"{_host()}.parquet.tmp") for p in day.iterdir())
    assert answers(home) == before


def _host() -> str:
    from storage.parquet_parts import _host

    return _host()


def test_a_second_run_while_one_holds_the_lock_does_nothing(home):
    from storage.compaction import _exclusive

    with _exclusive(home.predictions) as mine:
        assert mine
        report = compact_log(home, "predictions", NOW)
    assert report.locked and report.groups == 0
    assert compact_log(home, "predictions", NOW).groups == 1


def test_parts_with_fewer_columns_are_filled_and_unknown_columns_skipped(tmp_path):
    home = DataHome(tmp_path / "home")
    log(home, ["a1", "a2"], seed=1)
    day = next(home.predictions.iterdir())
    narrow = pq.read_table(next(day.iterdir())).drop_columns(["attrs", "input_uri"])
    narrow = narrow.set_column(0, "request_id", pa.array(["b1", "b2"]))
    write_part(narrow, day)
    before = answers(home)
    assert compact_log(home, "predictions", NOW).groups == 1
    assert answers(home) == before
    wide = pq.read_table(visible_parts(day)[0]).replace_schema_metadata(None)
    wide = wide.slice(0, 2).append_column("extra", pa.array([1, 2]))
    write_part(wide.set_column(0, "request_id", pa.array(["c1", "c2"])), day)
    write_part(narrow.set_column(0, "request_id", pa.array(["d1", "d2"])), day)
    report = compact_log(home, "predictions", NOW)
    assert report.groups == 0 and "outside the log's schema" in report.skipped[0]
    assert Queries(home).count_predictions() == 8


def test_unknown_log_and_settings_errors_name_the_key(home):
    from storage.duckdb_conn import open_duckdb
    from storage.home import StorageError

    with pytest.raises(StorageError, match="log 'seed' cannot be compacted"):
        compact_log(home, "seed")
    with pytest.raises(StorageError, match="storage.memory_limit_mb = 8"):
        open_duckdb(StorageSettings(memory_limit_mb=8))
    assert "storage.compact_min_parts = 1" in StorageSettings(compact_min_parts=1).problems()[0]


def test_reader_connections_obey_the_storage_settings(tmp_path):
    from storage.duckdb_conn import open_duckdb, spill_root

    s = StorageSettings(memory_limit_mb=300, threads=1, spill_dir=str(tmp_path / "spill"))
    con = open_duckdb(s)
    limit, threads, temp = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('threads'), "
        "current_setting('temp_directory')"
    ).fetchall()[0]
    con.close()
    assert limit == "286.1 MiB" and threads == 1  # DuckDB prints MiB (300 MB)
    assert temp.startswith(str(spill_root(s)))
    (spill_root(s) / "999999-deadbeef").mkdir()  # a dead process's spill folder
    open_duckdb(s).close()
    assert not (spill_root(s) / "999999-deadbeef").exists()


def test_a_query_whose_part_vanished_runs_again_on_a_fresh_listing(home, monkeypatch):
    import storage.log_views as views

    real, calls = views.live_parts, []

    def listing(folder):
        calls.append(folder)
        parts = real(folder)
        return (
            parts + [folder / "date=2026-05-01" / "part-gone.parquet"] if len(calls) == 1 else parts
        )

    monkeypatch.setattr(views, "live_parts", listing)
    assert Queries(home).count_predictions() == 41
    assert len(calls) == 2


@pytest.mark.parametrize("name", ["storage.compaction_plan", "storage.compaction"])
def test_doctests(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
