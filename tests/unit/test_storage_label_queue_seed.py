"""Label log (validated, idempotent by annotation id), queue log, seed, small state files."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from storage.home import DataHome, StorageError
from storage.label_log import LabelEvent, LabelLog
from storage.queries import Queries
from storage.queue_log import QueueLog
from storage.seed import write_seed
from storage.state import append_event, read_events, read_state, write_state

CLASSES = ["0", "1", "2"]


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        (
            LabelEvent("r1", "seven", "labelstudio", "ann"),
            "label 'seven' for request_id 'r1' is not a class: use one of ['0', '1', '2']",
        ),
        (LabelEvent("r1", "", "labelstudio", "ann"), "label for request_id 'r1' is empty"),
        (LabelEvent("r1", "1", "crowd", "ann"), "source 'crowd' for request_id 'r1' is unknown"),
        (LabelEvent("", "1", "feedback", "ann"), "request_id is ''"),
        (
            LabelEvent("r1", "1", "feedback", "ann", ts=datetime(2026, 1, 1)),
            "ts for request_id 'r1'",
        ),
        (
            LabelEvent("r1", "1", "feedback", "ann", ls_annotation_id="9"),
            "ls_annotation_id for request_id 'r1'",
        ),
    ],
)
def test_label_errors_name_the_field(tmp_path, event, needle):
    with pytest.raises(StorageError) as err:
        LabelLog(DataHome(tmp_path)).append([event], CLASSES)
    assert needle in str(err.value)
    assert not (tmp_path / "labels").exists()


def test_label_sync_is_idempotent_by_annotation_id(tmp_path):
    labels = LabelLog(DataHome(tmp_path))
    events = [
        LabelEvent("r1", "1", "labelstudio", "ann", ls_task_id=10, ls_annotation_id=100),
        LabelEvent("r2", "2", "labelstudio", "ann", ls_task_id=11, ls_annotation_id=101),
        LabelEvent("r2", "2", "labelstudio", "ann", ls_task_id=11, ls_annotation_id=101),
        LabelEvent("r3", "0", "feedback", "user-7"),
    ]
    assert labels.append(events, CLASSES) == 3
    assert labels.known_annotation_ids() == {100, 101}
    assert labels.append(events[:3], CLASSES) == 0  # a second sync writes nothing
    assert labels.append([], CLASSES) == 0
    assert Queries(DataHome(tmp_path)).label_counts() == {"feedback": 1, "labelstudio": 2}


def test_queue_skips_ids_already_queued(tmp_path):
    home = DataHome(tmp_path)
    queue = QueueLog(home)
    assert (
        queue.append(["r1", "r2", "r1"], ["uncertainty", "audit", "audit"], scores=[0.3, None, 0.1])
        == 2
    )
    assert queue.append(["r2", "r3"], "audit", ls_task_ids=[5, 6]) == 1
    assert queue.queued_ids() == {"r1", "r2", "r3"}
    assert Queries(home).pending_labels() == 3
    with pytest.raises(StorageError, match="reason 'randm' for request_id 'r9' is unknown"):
        queue.append(["r9"], "randm")
    with pytest.raises(StorageError, match="ls_task_ids has 1 values for 2 request_ids"):
        queue.append(["r8", "r9"], "audit", ls_task_ids=[1])


def test_seed_writes_examples_and_seed_labels_once(tmp_path):
    home = DataHome(tmp_path)
    feats = np.array([[1.0, 2.0], [3.0, 4.0]])
    n = write_seed(
        home, ["s1", "s2"], feats, [b"a", b"b"], ["0", "2"], attrs=[{"k": "v"}, {}], classes=CLASSES
    )
    assert n == 2
    assert len(list(home.seed.glob("part-*.parquet"))) == 1
    assert write_seed(home, ["s1", "s2"], feats, [b"a", b"b"], ["0", "2"]) == 0  # idempotent
    ex = Queries(home).labeled_examples()
    assert ex["request_id"].to_pylist() == ["s1", "s2"]
    assert ex["label"].to_pylist() == ["0", "2"]
    assert ex["source"].to_pylist() == ["seed", "seed"]
    assert ex["features"].to_pylist() == [[1.0, 2.0], [3.0, 4.0]]
    assert ex["attrs"].to_pylist() == [[("k", "v")], []]
    with pytest.raises(StorageError, match="labels has 1 rows for 2 request_ids"):
        write_seed(home, ["s3", "s4"], feats, [b"a", b"b"], ["0"])
    with pytest.raises(StorageError, match="label '9' for request_id 's4' is not a class"):
        write_seed(home, ["s3", "s4"], feats, [b"a", b"b"], ["0", "9"], classes=CLASSES)


def test_state_documents_and_events(tmp_path):
    home = DataHome(tmp_path)
    assert read_state(home, "labelstudio") is None
    write_state(home, "labelstudio", {"project_id": 3})
    write_state(home, "labelstudio", {"project_id": 4})
    assert read_state(home, "labelstudio") == {"project_id": 4}
    assert read_events(home, "gate") == []
    append_event(home, "gate", {"promote": False, "reasons": ["accuracy dropped"]})
    append_event(home, "gate", {"promote": True, "ts": "2026-01-01T00:00:00+00:00"})
    with open(home.state / "gate.jsonl", "a") as f:
        f.write('{"promote": tr')  # a writer crashed mid-line
    events = read_events(home, "gate")
    assert [e["promote"] for e in events] == [False, True]
    assert events[1]["ts"] == "2026-01-01T00:00:00+00:00" and "ts" in events[0]
    assert read_events(home, "gate", last=1) == events[1:]
    with pytest.raises(StorageError, match="state name '../x'"):
        write_state(home, "../x", {})
    with pytest.raises(ValueError, match="not JSON-serializable"):
        write_state(home, "bad", {"x": object()})
    assert read_state(home, "bad") is None
