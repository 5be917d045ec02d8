"""A label corrected in Label Studio reaches the label log once, and readers use it: the dedup
rule (`new_events`) on hand-made events, then the log and its readers on a real data home."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow.parquet as pq

import storage.label_log
from storage.home import DataHome
from storage.label_log import LabelEvent, LabelLog, events_table, new_events
from storage.parquet_parts import write_partitioned
from storage.prediction_log import PredictionLog, make_batch
from storage.queries import Queries

CLASSES = ["a", "b", "c"]
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def ann(label: str, ann_id: int | None, minute: int = 0, rid: str = "r1", who: str = "alice"):
    return LabelEvent(rid, label, "labelstudio" if ann_id else "feedback", who,
                      ts=T0 + timedelta(minutes=minute), ls_task_id=10, ls_annotation_id=ann_id)  # fmt: skip


def picked(events, logged) -> list[tuple]:
    return [(e.ls_annotation_id, e.label, e.ts.minute) for e in new_events(events, logged)]


def test_new_events_keeps_new_and_changed_annotations_only():
    assert picked([ann("a", 7), ann("b", 8)], {}) == [(7, "a", 0), (8, "b", 0)]
    assert picked([ann("a", 7)], {7: "a"}) == []  # unchanged: a re-sync writes nothing
    assert picked([ann("a", 7, minute=5)], {7: "a"}) == []  # a save that changed nothing
    assert picked([ann("b", 7, minute=5)], {7: "a"}) == [(7, "b", 5)]  # corrected: one event
    assert picked([ann("a", 7, minute=9)], {7: "b"}) == [(7, "a", 9)]  # and back again
    assert picked([ann("b", 7), ann("b", 7, minute=1)], {}) == [(7, "b", 0)]  # once per call
    assert picked([ann("a", None), ann("a", None)], {}) == [(None, "a", 0), (None, "a", 0)]


def test_doctests_of_the_label_log():
    result = doctest.testmod(storage.label_log)
    assert result.attempted > 0 and result.failed == 0


def log_predictions(home: DataHome, ids: list[str]) -> None:
    n = len(ids)
    table = make_batch(request_ids=ids, features=np.zeros((n, 2)), probs=np.tile([0.5, 0.3, 0.2], (n, 1)),
                       classes=CLASSES, model_version="v0001", ts=[T0] * n, inputs=[b"x"] * n)  # fmt: skip
    PredictionLog(home).append(table, CLASSES)


def label_of(home: DataHome, rid: str) -> tuple[str, int, bool]:
    rows = {r["request_id"]: r for r in Queries(home).labeled_examples().to_pylist()}
    return rows[rid]["label"], rows[rid]["n_annotators"], rows[rid]["disagreement"]


def raw_events(home: DataHome) -> list[tuple]:
    table = pq.ParquetDataset(home.labels).read(columns=["ls_annotation_id", "label"])
    return sorted(zip(*table.to_pydict().values(), strict=True))


def test_a_correction_is_written_once_and_wins(tmp_path):
    home = DataHome(tmp_path / "home")
    log_predictions(home, ["r1", "r2"])
    labels = LabelLog(home)
    first = [ann("a", 7, minute=1), ann("c", 8, minute=2, rid="r2")]
    assert labels.append(first, CLASSES) == 2
    assert label_of(home, "r1") == ("a", 1, False)
    assert labels.append(first, CLASSES) == 0  # re-sync of unchanged annotations

    corrected = [ann("b", 7, minute=30), first[1]]  # same id 7, later updated_at, new label
    assert labels.append(corrected, CLASSES) == 1
    assert labels.append(corrected, CLASSES) == 0
    assert label_of(home, "r1") == ("b", 1, False)  # one annotator, whose latest answer is b
    assert label_of(home, "r2") == ("c", 1, False)
    assert labels.logged_annotations() == {7: (10, "b"), 8: (10, "c")}
    assert raw_events(home) == [(7, "a"), (7, "b"), (8, "c")]
    assert Queries(home).annotation_ids() == {7, 8}
    assert Queries(home).label_counts() == {"labelstudio": 2}

    # another annotator who answered between the two versions: kept, flagged, and the
    # correction is still the latest event
    assert labels.append([ann("c", 9, minute=10, who="bob")], CLASSES) == 1
    assert label_of(home, "r1") == ("b", 2, True)


def test_racing_syncs_writing_one_version_twice_count_once(tmp_path):
    home = DataHome(tmp_path / "home")
    log_predictions(home, ["r1"])
    for _ in range(2):  # two syncs that both saw annotation 7 as new, then as corrected
        write_partitioned(events_table([ann("a", 7, minute=1)]), home.labels, "ts")
        write_partitioned(events_table([ann("b", 7, minute=30)]), home.labels, "ts")
    assert len(raw_events(home)) == 4
    assert label_of(home, "r1") == ("b", 1, False)
    assert LabelLog(home).logged_annotations() == {7: (10, "b")}
    assert LabelLog(home).append([ann("b", 7, minute=30)], CLASSES) == 0
