"""DuckDB readers: dedup, windows, candidates, labeled examples, audit outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from storage.home import DataHome, StorageError
from storage.label_log import LabelEvent, LabelLog
from storage.prediction_log import PREDICTION_SCHEMA, PredictionLog, make_batch
from storage.queries import AUDIT_SCHEMA, LABELED_SCHEMA, QUEUED_SCHEMA, Queries
from storage.queue_log import QueueLog
from storage.seed import write_seed

CLASSES = ["a", "b"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def log(home, ids, *, start=0, version="v0001", role="champion", p_a=0.9, ts=None) -> None:
    """Log predictions `ids` one minute apart from T0 + start minutes; pred 'a' when p_a > .5."""
    n = len(ids)
    stamps = ts or [T0 + timedelta(minutes=start + i) for i in range(n)]
    probs = np.tile([p_a, 1 - p_a], (n, 1))
    features = np.arange(n * 2, dtype=float).reshape(n, 2)
    table = make_batch(request_ids=ids, features=features, probs=probs, classes=CLASSES,
                       model_version=version, role=role, ts=stamps, inputs=[b"raw"] * n)  # fmt: skip
    PredictionLog(home).append(table, CLASSES)


def label(home, rid, lab, annotator="ann1", minute=100, ann_id=None, source="labelstudio"):
    event = LabelEvent(rid, lab, source, annotator, ts=T0 + timedelta(minutes=minute),
                       ls_annotation_id=ann_id)  # fmt: skip
    return LabelLog(home).append([event], CLASSES)


@pytest.fixture
def home(tmp_path) -> DataHome:
    return DataHome(tmp_path / "home")


def test_empty_home_answers_with_empty_typed_tables(home):
    q = Queries(home)
    assert q.count_predictions() == 0
    assert q.recent_predictions(10).schema == PREDICTION_SCHEMA
    assert q.recent_predictions(10).num_rows == 0
    assert q.candidates(10).column_names == [
        "request_id", "ts", "model_version", "probs", "pred", "confidence", "margin", "entropy",
    ]  # fmt: skip
    assert q.labeled_examples().schema == LABELED_SCHEMA
    assert q.audit_outcomes(5).schema == AUDIT_SCHEMA
    assert q.pending_labels() == 0
    assert q.label_counts() == {}
    assert q.queued_ids() == set() and q.annotation_ids() == set()
    assert not home.root.exists()  # reading never creates folders


def test_duplicate_request_id_counts_once_everywhere(home):
    log(home, ["r1", "r2"], start=0, version="v0001")
    log(home, ["r1"], start=10, version="v0002", p_a=0.2)  # a retry, logged later
    q = Queries(home)
    assert q.count_predictions() == 2
    assert q.count_predictions("v0001") == 2 and q.count_predictions("v0002") == 0
    recent = q.recent_predictions(10)
    assert recent["request_id"].to_pylist() == ["r1", "r2"]
    assert recent["model_version"].to_pylist() == ["v0001", "v0001"]  # first ts wins
    assert q.candidates(10).num_rows == 2
    QueueLog(home).append(["r1"], "audit")
    label(home, "r1", "a")
    assert q.labeled_examples().num_rows == 1
    assert q.audit_outcomes(10)["request_id"].to_pylist() == ["r1"]
    assert q.prediction_frame(["r1"]).num_rows == 1


def test_same_ts_duplicate_tie_broken_by_file_name(home):
    log(home, ["r1"], ts=[T0], version="v0001")
    log(home, ["r1"], ts=[T0], version="v0002")
    assert Queries(home).recent_predictions(5)["model_version"].to_pylist() == ["v0001"]


def test_recent_and_first_windows(home):
    log(home, ["r0", "r1", "r2"], start=0, version="v0001")
    log(home, ["r3", "r4"], start=3, version="v0002")
    q = Queries(home)
    assert q.recent_predictions(3)["request_id"].to_pylist() == ["r2", "r3", "r4"]
    assert q.recent_predictions(2, "v0001")["request_id"].to_pylist() == ["r1", "r2"]
    assert q.first_predictions(2)["request_id"].to_pylist() == ["r0", "r1"]
    assert q.first_predictions(5, "v0002")["request_id"].to_pylist() == ["r3", "r4"]
    narrow = q.recent_predictions(1, columns=["request_id", "confidence"])
    assert narrow.column_names == ["request_id", "confidence"]
    assert narrow["confidence"].to_pylist() == pytest.approx([0.9])
    with pytest.raises(StorageError, match="column 'nope' is not in the prediction log"):
        q.recent_predictions(1, columns=["nope"])
    with pytest.raises(StorageError, match="n_rows is -1"):
        q.recent_predictions(-1)


def test_temp_files_are_invisible_to_readers(home):
    log(home, ["r1"])
    day = next(home.predictions.iterdir())
    (day / ".deadbeef.pid1.h.parquet.tmp").write_bytes(b"PAR1 half written")
    assert Queries(home).count_predictions() == 1
    assert Queries(home).recent_predictions(5).num_rows == 1


def test_candidates_exclude_queued_labeled_and_non_champion(home):
    log(home, ["r0", "r1", "r2", "r3", "r4"], start=0)
    log(home, ["s5"], start=5, role="shadow")
    QueueLog(home).append(["r3"], ["uncertainty"], ls_task_ids=[7], scores=[0.4])
    label(home, "r4", "b", source="feedback")
    q = Queries(home)
    assert q.candidates(10)["request_id"].to_pylist() == ["r0", "r1", "r2"]
    assert q.candidates(3)["request_id"].to_pylist() == ["r2"]  # window = r2, r3, r4
    assert q.pending_labels() == 1
    label(home, "r3", "a")
    assert q.pending_labels() == 0


def test_ranked_candidates_are_the_draw_and_the_top_of_the_same_candidates(home):
    """What `curation.sampling.pick` takes: the first `budget` eligible rows in the seeded
    audit order, the `budget` most uncertain, one counts row; picked by hand below."""
    import pyarrow.compute as pc

    from curation.rules import CurationRules
    from curation.sampling import pick

    for i, p_a in enumerate([0.9, 0.6, 0.55, 0.8, 0.7]):
        log(home, [f"r{i}"], start=i, p_a=p_a)
    log(home, ["s5"], start=5, role="shadow", p_a=0.5)
    QueueLog(home).append(["r2"], ["uncertainty"], ls_task_ids=[7], scores=[0.4])
    q = Queries(home)
    ranked = q.ranked_candidates(None, "least_confidence", 2, seed=0, audit_share=0.5)
    kinds = ranked["kind"].to_pylist()
    assert sorted(kinds) == ["counts", "draw", "draw", "top", "top"]
    assert set(ranked["n"].to_pylist()) == {4}  # r0, r1, r3, r4: r2 is queued, s5 a shadow
    top = ranked.filter(pc.equal(ranked["kind"], "top"))
    assert top["request_id"].to_pylist() == ["r1", "r4"]  # 1 - 0.6, then 1 - 0.7
    assert top["score"].to_pylist() == pytest.approx([0.4, 0.3])
    drawn = ranked.filter(pc.equal(ranked["kind"], "draw")).sort_by("draw")
    assert drawn["request_id"].to_pylist() == ["r1", "r3"]  # seed 0's audit order
    out = pick(ranked, 2, CurationRules(strategy="least_confidence", audit_share=0.5))
    assert out["request_id"].to_pylist() == ["r1", "r4"]  # r1 is drawn, so the top skips it
    assert out["reason"].to_pylist() == ["audit", "uncertainty"]
    assert q.ranked_candidates(2, "margin", 5)["n"].to_pylist()[0] == 2  # window r3, r4


def test_labeled_examples_latest_label_and_disagreement(home):
    log(home, ["r1", "r2", "r3"])
    label(home, "r1", "a", annotator="ann1", minute=10, ann_id=1)
    label(home, "r1", "b", annotator="ann2", minute=20, ann_id=2)  # disagrees, latest
    label(home, "r2", "a", annotator="ann1", minute=10, ann_id=3)
    label(home, "r2", "b", annotator="ann1", minute=30, ann_id=4)  # ann1 corrects themself
    write_seed(home, ["s1"], np.array([[9.0, 9.0]]), [b"seed"], ["b"], classes=CLASSES)
    ex = Queries(home).labeled_examples()
    rows = {r["request_id"]: r for r in ex.to_pylist()}
    assert ex["request_id"].to_pylist() == ["s1", "r1", "r2"]  # seed first, then by ts
    assert rows["r1"]["label"] == "b" and rows["r1"]["n_annotators"] == 2
    assert rows["r1"]["disagreement"] is True
    assert rows["r2"]["label"] == "b" and rows["r2"]["n_annotators"] == 1
    assert rows["r2"]["disagreement"] is False
    assert rows["s1"]["source"] == "seed" and rows["s1"]["features"] == [9.0, 9.0]
    assert rows["r1"]["input"] == b"raw" and rows["r1"]["features"] == [0.0, 1.0]
    window = Queries(home).labeled_examples(window_rows=2)
    assert window["request_id"].to_pylist() == ["r1", "r2"]  # seed is the oldest


def test_audit_outcomes_compute_correct(home):
    log(home, ["r1", "r2"], p_a=0.9, version="v0001")  # pred a
    log(home, ["r3"], start=5, p_a=0.1, version="v0002")  # pred b
    log(home, ["r4"], start=6)
    # r2: a pick of strategy "random", as unbiased as the audit share
    QueueLog(home).append(["r1", "r2", "r3", "r4"], ["audit", "random", "audit", "uncertainty"])
    label(home, "r1", "a")
    label(home, "r2", "b")
    label(home, "r3", "b")
    label(home, "r4", "b")  # wrong, but not an audit row
    q = Queries(home)
    out = q.audit_outcomes(10)
    assert out["request_id"].to_pylist() == ["r1", "r2", "r3"]
    assert out["correct"].to_pylist() == [True, False, True]
    assert out["label"].to_pylist() == ["a", "b", "b"]
    assert q.audit_outcomes(2)["request_id"].to_pylist() == ["r2", "r3"]
    assert q.audit_outcomes(10, "v0002")["correct"].to_pylist() == [True]
    assert q.label_counts() == {"labelstudio": 4}


def test_prediction_frame_keeps_requested_order(home):
    log(home, ["r1", "r2", "r3"])
    frame = Queries(home).prediction_frame(["r3", "zz", "r1"], columns=["request_id", "pred"])
    assert frame.to_pylist() == [
        {"request_id": "r3", "pred": "a"},
        {"request_id": "r1", "pred": "a"},
    ]
    assert Queries(home).prediction_frame([]).num_rows == 0


def test_union_by_name_reads_parts_written_with_fewer_columns(home):
    """An older part without `input_uri` still reads (as nulls) next to newer parts."""
    from storage.parquet_parts import write_part

    log(home, ["r1"])
    old = make_batch(request_ids=["r0"], features=np.zeros((1, 2)), probs=np.array([[0.5, 0.5]]),
                     classes=CLASSES, model_version="v0000", ts=T0 - timedelta(days=1))  # fmt: skip
    write_part(old.drop_columns(["input_uri"]), home.predictions / "date=2026-04-30")
    t = Queries(home).first_predictions(1)
    assert t["request_id"].to_pylist() == ["r0"] and t["input_uri"].to_pylist() == [None]
    assert isinstance(t, pa.Table)


def test_queued_joins_what_a_labeler_sees(home):
    log(home, ["r1", "r2", "r3"], p_a=0.3)
    write_seed(home, ["s1"], np.zeros((1, 2)), [b"seed"], ["a"])
    QueueLog(home).append(
        ["r2", "r1"], ["uncertainty", "audit"], ls_task_ids=[7, None], scores=[0.6, None]
    )
    label(home, "r2", "b")
    q = Queries(home)
    every = q.queued()
    assert every.schema == QUEUED_SCHEMA
    assert every["request_id"].to_pylist() == ["r1", "r2"]  # same queue ts: by id
    assert every["reason"].to_pylist() == ["audit", "uncertainty"]
    assert every["ls_task_id"].to_pylist() == [None, 7]
    assert every["pred"].to_pylist() == ["b", "b"] and every["input"].to_pylist() == [b"raw"] * 2
    assert every["confidence"].to_pylist() == pytest.approx([0.7, 0.7])
    assert q.queued(unlabeled_only=True)["request_id"].to_pylist() == ["r1"]
    assert q.known_request_ids(["r1", "s1", "ghost", "r1"]) == {"r1", "s1"}
    assert q.known_request_ids([]) == set()


def test_one_queries_keeps_one_database_and_sees_every_new_part(home, monkeypatch):
    """One database per `Queries`, one short connection per call, a fresh listing each time:
    parts written between calls (and a log that had none) are read; temp tables of one
    call never reach the next."""
    q = Queries(home)
    assert q.count_predictions() == 0 and q.pending_labels() == 0  # no parts yet
    database = q.database._root
    log(home, ["r1", "r2"])
    assert q.count_predictions() == 2
    assert q.recent_predictions(1)["request_id"].to_pylist() == ["r2"]  # temp tables made
    log(home, ["r3"], start=5)
    QueueLog(home).append(["r3"], "audit")
    assert q.count_predictions() == 3 and q.pending_labels() == 1
    assert q.recent_predictions(2)["request_id"].to_pylist() == ["r2", "r3"]
    assert q.candidates(10)["request_id"].to_pylist() == ["r1", "r2"]
    assert sum(b.num_rows for b in q.window_batches(10, role="champion")) == 3
    assert q.database._root is database  # never reopened
    con = q.database.connect()
    try:  # a new connection holds no view or temp table of the calls before
        names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() "
                                           "WHERE NOT internal").fetchall()}  # fmt: skip
        assert names == set() and views == set()
        assert con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0] == "UTC"
    finally:
        con.close()
    q.close()
    assert q.count_predictions() == 3 and q.database._root is not database  # reopened


def test_shared_database_obeys_the_storage_settings(home, tmp_path):
    from storage.settings import StorageSettings

    s = StorageSettings(memory_limit_mb=300, threads=1, spill_dir=str(tmp_path / "spill"))
    q = Queries(home, s)
    log(home, ["r1"])
    assert q.count_predictions() == 1
    con = q.database.connect()
    try:
        limit, threads = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        ).fetchall()[0]
    finally:
        con.close()
    assert limit == "286.1 MiB" and threads == 1
    q.settings = StorageSettings(memory_limit_mb=400, threads=1)  # replaced: a new database
    con = q.database.connect()
    try:
        assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == (
            "381.4 MiB"
        )
    finally:
        con.close()


def test_parts_of_one_schema_are_read_without_union_by_name(home):
    """`union_by_name` costs footer reads at every mention of a log; it is used only when a
    part differs (an older part without newer columns still reads, as NULLs)."""
    from storage.log_views import log_files, read_parts
    from storage.parquet_parts import write_part

    log(home, ["r1"])
    log(home, ["r2"], start=1)
    assert "union_by_name=false" in read_parts(log_files(home.predictions))
    old = make_batch(request_ids=["r0"], features=np.zeros((1, 2)), probs=np.array([[0.5, 0.5]]),
                     classes=CLASSES, model_version="v0000", ts=T0 - timedelta(days=1))  # fmt: skip
    write_part(old.drop_columns(["input_uri"]), home.predictions / "date=2026-04-30")
    assert "union_by_name=true" in read_parts(log_files(home.predictions))
    q = Queries(home)
    assert q.first_predictions(3)["input_uri"].to_pylist() == [None, None, None]
    assert q.count_predictions() == 3
