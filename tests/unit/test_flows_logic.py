"""The little logic that lives in flows/: input files, label conversion, the demo's home."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.label_sync import to_events
from flows.demo import prepare_home
from flows.loop.score import read_inputs


class Ann:
    def __init__(self, request_id, label, cancelled=False, ann_id=1):
        self.request_id = request_id
        self.label = label
        self.was_cancelled = cancelled
        self.annotator = "a@x"
        self.ts = datetime(2026, 1, 1, tzinfo=UTC)
        self.ls_task_id = 10
        self.ls_annotation_id = ann_id


def test_to_events_keeps_good_and_counts_each_rejection():
    anns = [
        Ann("r1", "3", ann_id=1),
        Ann("r2", "3", cancelled=True, ann_id=2),
        Ann("r3", None, ann_id=3),
        Ann("r4", "cat", ann_id=4),
        Ann("ghost", "1", ann_id=5),
        Ann("r1", "5", ann_id=6),
    ]
    events, rejected = to_events(anns, tuple("0123456789"), known_ids={"r1", "r2", "r3", "r4"})
    assert [(e.request_id, e.label, e.ls_annotation_id) for e in events] == [
        ("r1", "3", 1),
        ("r1", "5", 6),
    ]
    assert all(e.source == "labelstudio" for e in events)
    assert rejected == {"cancelled": 1, "empty": 1, "unknown_label": 1, "unknown_request_id": 1}


def test_read_inputs_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="does not exist: pass --input PATH"):
        read_inputs(tmp_path / "missing.parquet")
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"input": pa.array([b"x"], pa.binary())}), p)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['request_id'\]"):
        read_inputs(p)
    pq.write_table(
        pa.table({"request_id": pa.array([], pa.string()), "input": pa.array([], pa.binary())}), p
    )
    with pytest.raises(ValueError, match="is empty"):
        read_inputs(p)


def test_prepare_home_replaces_only_a_demo_home(tmp_path):
    home = tmp_path / "home"
    assert prepare_home(home) is None  # absent: nothing to do
    (home / "state").mkdir(parents=True)
    (home / "state" / "demo.json").write_text("{}")
    (home / "predictions").mkdir()
    assert "removed the previous demo" in prepare_home(home)
    assert not home.exists()
    other = tmp_path / "prod"
    (other / "predictions").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a demo's: pass --home DIR"):
        prepare_home(other)
    assert (other / "predictions").is_dir()  # nothing removed
