"""Eval set versions: lineage (rows only join), group sides never move, tamper detection."""

from __future__ import annotations

import json

import pytest

from storage.eval_sets import (
    create_eval_set,
    eval_folder,
    latest_eval_set,
    list_eval_sets,
    load_eval_set,
)
from storage.home import DataHome, StorageError

COMP = {"source": {"seed": 2}}


def test_versions_grow_from_their_parent(tmp_path):
    home = DataHome(tmp_path)
    assert latest_eval_set(home) is None
    first = create_eval_set(home, None, ["s1", "s2"], ["3", "4"], {"s1": "eval", "s2": "eval",
                            "s3": "train"}, COMP, {"group_attr": None})  # fmt: skip
    assert (first.id, first.parent, first.n, first.added) == ("ev-0001", None, 2, 2)
    second = create_eval_set(home, first, ["a1"], ["7"], {"g:9": "eval"}, {"source": {}}, {})
    assert (second.id, second.parent) == ("ev-0002", "ev-0001")
    assert second.row_ids == ("s1", "s2", "a1") and second.labels == ("3", "4", "7")
    assert second.groups == {"s1": "eval", "s2": "eval", "s3": "train", "g:9": "eval"}
    assert second.added == 1
    assert load_eval_set(home, "ev-0002") == second == latest_eval_set(home)
    assert list_eval_sets(home) == ["ev-0001", "ev-0002"]
    # nothing new: the parent is the version, no file is written
    assert create_eval_set(home, second, [], [], {}, COMP, {}) is second
    assert list_eval_sets(home) == ["ev-0001", "ev-0002"]
    summary = second.summary()
    assert summary["version"] == "ev-0002" and summary["parent"] == "ev-0001"
    assert summary["n"] == 3 and summary["composition"] == {"source": {}}


def test_rows_and_groups_never_move(tmp_path):
    home = DataHome(tmp_path)
    first = create_eval_set(home, None, ["s1"], ["3"], {"s1": "eval", "t": "train"}, COMP, {})
    with pytest.raises(StorageError, match="row 's1' is already in ev-0001"):
        create_eval_set(home, first, ["s1"], ["3"], {}, COMP, {})
    with pytest.raises(StorageError, match="group 't' already has a side in ev-0001"):
        create_eval_set(home, first, [], [], {"t": "eval"}, COMP, {})
    with pytest.raises(StorageError, match="are not 'eval' or 'train'"):
        create_eval_set(home, first, [], [], {"u": "test"}, COMP, {})
    with pytest.raises(StorageError, match="2 new eval ids but 1 labels"):
        create_eval_set(home, first, ["a", "b"], ["1"], {}, COMP, {})


def test_tampering_is_detected(tmp_path):
    home = DataHome(tmp_path)
    create_eval_set(home, None, ["s1"], ["3"], {"s1": "eval"}, COMP, {})
    path = eval_folder(home) / "ev-0001.json"
    m = json.loads(path.read_text())
    m["labels"] = ["5"]
    path.write_text(json.dumps(m))
    with pytest.raises(StorageError, match="eval set ev-0001 is corrupted"):
        load_eval_set(home, "ev-0001")
    with pytest.raises(StorageError, match="is not an eval set id"):
        load_eval_set(home, "../ev-0001")
    with pytest.raises(
        StorageError, match=r"eval set ev-0009 does not exist in .*: known: \[.ev-0001.\]"
    ):
        load_eval_set(home, "ev-0009")
