"""Data home layout and Parquet parts: whole files only, leftovers of dead writers cleaned."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.home import DataHome, StorageError
from storage.parquet_parts import (
    ParquetLayout,
    clean_leftovers,
    leaf_paths,
    write_part,
    write_partitioned,
)


def test_home_layout_is_lazy_then_created(tmp_path):
    home = DataHome.from_path(tmp_path / "home")
    assert not home.root.exists()  # constructing a home creates nothing
    assert home.registry_file == home.root / "registry.json"
    assert home.drift_reports == home.root / "reports" / "drift"
    assert home.cards == home.root / "reports" / "cards"
    assert home.ensure() is home
    for name in ("predictions", "labels", "queue", "seed", "datasets", "models", "state", "sim"):
        assert getattr(home, name) == home.root / name
        assert getattr(home, name).is_dir()
    assert home.drift_reports.is_dir() and home.cards.is_dir()
    assert list(home.root.glob(".write-probe-*")) == []


def test_home_not_writable_names_path_and_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match=r"not writable.*LOOPWRIGHT_HOME"):
        DataHome(blocker / "home").ensure()
    with pytest.raises(StorageError, match=r"is a file"):
        DataHome(blocker).ensure()
    assert issubclass(StorageError, ValueError)


def _table(n: int = 3) -> pa.Table:
    return pa.table({"request_id": [f"r{i}" for i in range(n)], "x": list(range(n))})


def test_write_part_final_name_and_content(tmp_path):
    path = write_part(_table(), tmp_path / "f", prefix="part")
    assert path.parent == tmp_path / "f"
    assert path.name.startswith("part-") and path.name.endswith(
        f"-{os.getpid()}-{path.stem[-8:]}.parquet"
    )
    assert pq.read_table(path).equals(_table())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    with pytest.raises(ValueError, match="prefix"):
        write_part(_table(), tmp_path, prefix="../evil")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clean_leftovers_removes_only_dead_writers(tmp_path):
    from storage.parquet_parts import _host

    nested = tmp_path / "date=2026-01-01"
    nested.mkdir()
    dead = nested / f".deadbeef.pid{_dead_pid()}.{_host()}.parquet.tmp"
    alive = nested / f".cafebabe.pid{os.getpid()}.{_host()}.parquet.tmp"
    foreign = nested / ".0badf00d.pid1.some-other-host.parquet.tmp"
    unrelated = nested / "notes.parquet.tmp"
    for p in (dead, alive, foreign, unrelated):
        p.write_bytes(b"half a parquet file")
    assert clean_leftovers(tmp_path) == 1
    assert not dead.exists()
    assert alive.exists() and foreign.exists() and unrelated.exists()
    assert clean_leftovers(tmp_path / "missing") == 0


def test_write_partitioned_splits_by_utc_date(tmp_path):
    ts = pa.array(
        [
            datetime(2026, 1, 1, 23, 59, tzinfo=UTC),
            datetime(2026, 1, 2, 0, 1, tzinfo=UTC),
            datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
        ],
        pa.timestamp("us", tz="UTC"),
    )
    table = pa.table({"request_id": ["a", "b", "c"], "ts": ts})
    paths = write_partitioned(table, tmp_path)
    assert sorted(p.parent.name for p in paths) == ["date=2026-01-01", "date=2026-01-02"]
    by_day = {p.parent.name: pq.read_table(p)["request_id"].to_pylist() for p in paths}
    assert by_day == {"date=2026-01-01": ["a", "c"], "date=2026-01-02": ["b"]}
    naive = pa.table({"ts": pa.array([datetime(2026, 1, 1)], pa.timestamp("us"))})
    with pytest.raises(ValueError, match="time-zone aware"):
        write_partitioned(naive, tmp_path)


def test_write_partitioned_one_date_writes_the_table_as_is(tmp_path):
    ts = pa.array(
        [datetime(2026, 1, 1, h, tzinfo=UTC) for h in (9, 1, 23)], pa.timestamp("us", tz="UTC")
    )
    table = pa.table({"request_id": ["a", "b", "c"], "ts": ts})
    (path,) = write_partitioned(table, tmp_path)
    assert path.parent == tmp_path / "date=2026-01-01"
    assert pq.read_table(path).equals(table)  # every row, in the order given


def test_leaf_paths_are_the_parquet_column_paths(tmp_path):
    schema = pa.schema(
        [
            ("v", pa.list_(pa.float32())),
            ("w", pa.large_list(pa.float64())),
            ("m", pa.map_(pa.string(), pa.string())),
            ("s", pa.struct([("a", pa.int64()), ("b", pa.list_(pa.string()))])),
            ("x", pa.string()),
        ]
    )
    path = tmp_path / "t.parquet"
    pq.write_table(schema.empty_table(), path)
    meta = pq.ParquetFile(path).metadata
    written = [meta.schema.column(i).path for i in range(meta.num_columns)]
    assert [p for f in schema for p in leaf_paths(f)] == written
    assert written == [
        "v.list.element",
        "w.list.element",
        "m.key_value.key",
        "m.key_value.value",
        "s.a",
        "s.b.list.element",
        "x",
    ]


def test_parquet_layout_selects_dictionary_and_statistics_columns(tmp_path):
    table = pa.table(
        {
            "id": ["a", "b", "a"],
            "kind": ["x", "x", "y"],
            "vec": pa.array([[1.0], [2.0], [3.0]], pa.list_(pa.float32())),
        }
    )
    layout = ParquetLayout(dictionary=("kind", "absent"), statistics=("id", "vec"))
    assert layout.write_options(table.schema) == {
        "use_dictionary": ["kind"],
        "write_statistics": ["id", "vec.list.element"],
    }
    assert ParquetLayout().write_options(table.schema) == {}  # pyarrow's defaults
    path = write_part(table, tmp_path, layout=layout)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    cols = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert ["RLE_DICTIONARY" in cols[c].encodings for c in ("id", "kind")] == [False, True]
    assert [cols[c].is_stats_set for c in ("id", "kind")] == [True, False]
    assert (cols["vec.list.element"].statistics.min, cols["id"].statistics.max) == (1.0, "b")
    assert pq.read_table(path).equals(table)
