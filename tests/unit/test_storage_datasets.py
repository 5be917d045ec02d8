"""Dataset versions: stable hash split, exact manifests, tamper detection."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest

from storage.datasets import create_dataset, list_datasets, load_dataset, split_of
from storage.home import DataHome, StorageError


def labeled(n: int, offset: int = 0) -> pa.Table:
    ids = [f"req-{i}" for i in range(offset, offset + n)]
    return pa.table({"request_id": ids, "label": [str(i % 3) for i in range(offset, offset + n)]})


def test_split_is_stable_and_close_to_share():
    ids = [f"req-{i}" for i in range(2000)]
    first = [split_of(r) for r in ids]
    assert first == [split_of(r) for r in ids]
    assert 0.17 < first.count("test") / len(ids) < 0.23
    assert split_of("req-1", 0.0) == "train"
    with pytest.raises(StorageError, match="test_share is 1.5"):
        split_of("x", 1.5)


def test_create_load_roundtrip_and_disjoint_splits(tmp_path):
    home = DataHome(tmp_path)
    v1 = create_dataset(home, labeled(100), "all", {"window_rows": None}, parent_model=None)
    v2 = create_dataset(home, labeled(150), "window", {"window_rows": 150}, parent_model="v0001")
    assert (v1.id, v2.id) == ("ds-0001", "ds-0002")
    assert list_datasets(home) == ["ds-0001", "ds-0002"]
    assert load_dataset(home, "ds-0002") == v2
    assert set(v1.train_ids).isdisjoint(v1.test_ids)
    assert len(v1.train_ids) + len(v1.test_ids) == 100
    # a row that was test in v1 is test in v2: never trained on by any version
    assert set(v1.test_ids) <= set(v2.test_ids)
    assert set(v2.train_ids).isdisjoint(v1.test_ids)
    labels = dict(
        zip(labeled(100)["request_id"].to_pylist(), labeled(100)["label"].to_pylist(), strict=True)
    )
    assert [labels[r] for r in v1.train_ids] == list(v1.train_labels)
    assert v2.parent_model == "v0001" and v2.params == {"window_rows": 150}


def test_tampered_manifest_is_refused(tmp_path):
    home = DataHome(tmp_path)
    v = create_dataset(home, labeled(20), "all", {}, None)
    path = home.datasets / f"{v.id}.json"
    manifest = json.loads(path.read_text())
    manifest["train_labels"][0] = "2" if manifest["train_labels"][0] != "2" else "1"
    path.write_text(json.dumps(manifest))
    with pytest.raises(StorageError, match="dataset ds-0001 is corrupted"):
        load_dataset(home, "ds-0001")
    with pytest.raises(StorageError, match="'../ds-0001' is not a dataset id"):
        load_dataset(home, "../ds-0001")
    with pytest.raises(
        StorageError, match=r"dataset ds-0009 does not exist in .*: known: \[.ds-0001.\]"
    ):
        load_dataset(home, "ds-0009")


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        (pa.table({"request_id": ["a"]}), "no 'label' column"),
        (labeled(0), "labeled is empty"),
        (pa.table({"request_id": ["a", "a"], "label": ["0", "1"]}), "request_id more than once"),
    ],
)
def test_create_dataset_errors(tmp_path, table, needle):
    with pytest.raises(StorageError, match=needle):
        create_dataset(DataHome(tmp_path), table, "all", {}, None)
    assert list_datasets(DataHome(tmp_path)) == []


def test_concurrent_creators_get_distinct_ids(tmp_path):
    home = DataHome(tmp_path)
    with ThreadPoolExecutor(8) as pool:
        versions = list(
            pool.map(lambda i: create_dataset(home, labeled(5, i), "all", {}, None), range(8))
        )
    assert sorted(v.id for v in versions) == [f"ds-{i:04d}" for i in range(1, 9)]
    assert all(load_dataset(home, v.id) == v for v in versions)


def test_group_split_keeps_each_source_on_one_side(tmp_path):
    # 300 rows, copies of 40 source scans; a few rows without the attr split by their own id
    ids = [f"req-{i}" for i in range(300)]
    attrs = [[("scan", f"s{i % 40}")] if i % 10 else [("device", "a")] for i in range(300)]
    table = pa.table(
        {
            "request_id": ids,
            "label": [str(i % 3) for i in range(300)],
            "attrs": pa.array(attrs, pa.map_(pa.string(), pa.string())),
        }
    )
    v = create_dataset(DataHome(tmp_path), table, "all", {}, None, group_attr="scan")
    side = {r: "test" for r in v.test_ids} | {r: "train" for r in v.train_ids}
    by_scan: dict[str, set[str]] = {}
    for r, a in zip(ids, attrs, strict=True):
        if dict(a).get("scan"):
            by_scan.setdefault(dict(a)["scan"], set()).add(side[r])
    assert all(len(sides) == 1 for sides in by_scan.values())
    assert {"train"} in by_scan.values() and {"test"} in by_scan.values()
    # rows without a scan attr keep the per-id split
    assert all(
        side[r] == split_of(r) for r, a in zip(ids, attrs, strict=True) if "scan" not in dict(a)
    )
    assert json.loads((tmp_path / "datasets" / f"{v.id}.json").read_text())["group_attr"] == "scan"
    # ungrouped, the same scans straddle train and test
    u = create_dataset(DataHome(tmp_path), table, "all", {}, None)
    uside = {r: "test" for r in u.test_ids} | {r: "train" for r in u.train_ids}
    mixed = {
        dict(a)["scan"]
        for r, a in zip(ids, attrs, strict=True)
        if "scan" in dict(a) and uside[r] == "test"
    }
    assert any(
        {uside[r] for r, a in zip(ids, attrs, strict=True) if dict(a).get("scan") == s}
        == {"train", "test"}
        for s in mixed
    )


def test_group_split_needs_attrs(tmp_path):
    with pytest.raises(
        StorageError, match="group_attr is 'scan' but labeled has no 'attrs' column"
    ):
        create_dataset(DataHome(tmp_path), labeled(10), "all", {}, None, group_attr="scan")


def test_given_eval_ids_are_the_test_side_exactly(tmp_path):
    home = DataHome(tmp_path)
    table = labeled(10)
    v = create_dataset(
        home, table, "all", {}, None, eval_ids=("req-2", "req-7"), eval_set="ev-0003"
    )
    assert v.test_ids == ("req-2", "req-7") and v.test_labels == ("2", "1")
    assert v.train_ids == tuple(f"req-{i}" for i in (0, 1, 3, 4, 5, 6, 8, 9))
    assert v.eval_set == "ev-0003" and load_dataset(home, v.id) == v
    # no eval set: the hash split of before, and eval_set None
    assert create_dataset(home, table, "all", {}, None).eval_set is None
