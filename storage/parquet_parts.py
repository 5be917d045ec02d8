"""Append-only Parquet "parts": many writer processes, readers that only ever see whole files.

A part is written under a hidden temporary name (`.<uuid8>.pid<pid>.<host>.parquet.tmp`,
which the readers' `*.parquet` glob never matches), fsynced, then renamed into place. A writer
that dies mid-write leaves only its temp file; `clean_leftovers` removes those once the pid
encoded in the name is gone.

On object storage (`storage/objects.py`, a folder is then an `ObjectFolder`) a part is
serialised in memory and PUT once under its final name: an object appears whole or not at
all, so there is no temporary name and nothing to clean.

Compaction (`storage/compaction.py`) publishes merged files the same way; a merged file names
the parts it replaces in its metadata, and `live_parts` is what readers list: the merged
file without those parts.

`ParquetLayout` says which columns get dictionary encoding and min/max statistics: a log of
float vectors wastes time building dictionaries and statistics nobody reads (readers prune on
`ts`, `model_version` and `role`, never on a vector element).
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.atomic import fsync_dir
from storage.objects import ObjectFolder

TMP_SUFFIX = ".parquet.tmp"
_TMP_RE = re.compile(r"^\.[0-9a-f]{8}\.pid(?P<pid>\d+)\.(?P<host>[A-Za-z0-9_-]*)\.parquet\.tmp\Z")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\Z")
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_STAMP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*?-(?P<stamp>\d{8}T\d{12}Z)-")
# A temp file from another host cannot be checked by pid: remove it only when clearly stale.
FOREIGN_STALE_SECONDS = 24 * 3600


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def leaf_paths(field: pa.Field) -> list[str]:
    """The Parquet column paths of one Arrow field (`features` -> `features.list.element`),
    the names pyarrow's per-column write options expect."""
    t = field.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [f"{field.name}.list.{p}" for p in leaf_paths(t.value_field.with_name("element"))]
    if pa.types.is_map(t):
        kv = [t.key_field.with_name("key"), t.item_field.with_name("value")]
        return [f"{field.name}.key_value.{p}" for c in kv for p in leaf_paths(c)]
    if pa.types.is_struct(t):
        return [f"{field.name}.{p}" for c in t for p in leaf_paths(c)]
    return [field.name]


@dataclass(frozen=True)
class ParquetLayout:
    """Top-level columns that get dictionary encoding / min-max statistics (None: all of them,
    pyarrow's default). Names missing from a table are ignored."""

    dictionary: tuple[str, ...] | None = None
    statistics: tuple[str, ...] | None = None

    def write_options(self, schema: pa.Schema) -> dict:
        """Keyword arguments for `pq.write_table`."""

        def leaves(names: tuple[str, ...]) -> list[str]:
            return [p for f in schema if f.name in names for p in leaf_paths(f)]

        options: dict = {}
        if self.dictionary is not None:
            options["use_dictionary"] = leaves(self.dictionary)
        if self.statistics is not None:
            options["write_statistics"] = leaves(self.statistics)
        return options


DEFAULT_LAYOUT = ParquetLayout()


def temp_path(folder: Path) -> Path:
    """A hidden temporary name in `folder` that readers never glob and that `clean_leftovers`
    removes once this process is gone."""
    return Path(folder) / f".{uuid.uuid4().hex[:8]}.pid{os.getpid()}.{_host()}{TMP_SUFFIX}"


def publish(tmp: Path, final: Path) -> Path:
    """Make a fully written, fsynced temp file visible under its final name, durably."""
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return final


def write_part(
    table: pa.Table, folder: Path, prefix: str = "part", layout: ParquetLayout = DEFAULT_LAYOUT
) -> Path:
    """Write `table` as one new Parquet file in `folder` and return its final path.

    The final name `<prefix>-<utc ts>-<pid>-<uuid8>.parquet` sorts by the time the part became
    visible (the stamp is taken after the write, just before the rename), which the readers
    use as the tie-break when one request id was logged twice at the same `ts`, and which
    compaction relies on: a part that appears later never sorts before one already there.
    """
    if not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"prefix {prefix!r} is not a plain name: use letters, digits, '-' or '_' (e.g. 'part')"
        )
    if isinstance(folder, ObjectFolder):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **layout.write_options(table.schema))
        final = folder / _final_name(prefix)  # named after serialising, as below
        final.put(sink.getvalue().to_pybytes())
        return final
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(folder)
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f, **layout.write_options(table.schema))
            f.flush()
            os.fsync(f.fileno())
        final = folder / _final_name(prefix)
        publish(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _final_name(prefix: str) -> str:
    stamp = datetime.now(UTC).strftime(STAMP_FORMAT)
    return f"{prefix}-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"


def part_stamp(name: str) -> datetime | None:
    """When a part named by `write_part` (or a compacted file named after one) became
    visible; None for a name this module did not make."""
    m = _STAMP_RE.match(name)
    if m is None:
        return None
    return datetime.strptime(m["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)


def _objects_under(root: ObjectFolder) -> tuple[list[ObjectFolder], dict[str, int]]:
    """The Parquet objects under `root`, by URL, and their sizes (one listing)."""
    found = {u: int(info["size"]) for u, info in root.find().items() if u.endswith(".parquet")}
    parts = [ObjectFolder(u, root.endpoint_url, root.cache_dir) for u in sorted(found)]
    return parts, found


def visible_parts(folder: Path) -> list[Path]:
    """The Parquet files directly in `folder`, in name order (the readers' tie-break order),
    superseded ones included."""
    if isinstance(folder, ObjectFolder):
        return [p for p in _objects_under(folder)[0] if p.parent == folder]
    try:
        return sorted(p for p in Path(folder).iterdir() if p.name.endswith(".parquet"))
    except FileNotFoundError:
        return []


# A merged file (written by compaction) names the parts it replaces in its Parquet metadata.
META_SOURCES = b"loopwright.compacted_from"
META_AT = b"loopwright.compacted_at"
MERGED_RE = re.compile(r"-c[0-9a-f]{8}\.parquet\Z")


@functools.lru_cache(maxsize=4096)
def _merged_meta(
    path: str | ObjectFolder, version: str | int, size: int
) -> tuple[tuple[str, ...], str | None]:
    """(sources, written at) from a merged file's footer, once per file version (`version`:
    its mtime on disk, its ETag on object storage)."""
    try:
        if isinstance(path, ObjectFolder):
            with path.fs.open(path.key, "rb") as f:
                meta = pq.read_metadata(f).metadata or {}
        else:
            meta = pq.read_metadata(path).metadata or {}
    except (FileNotFoundError, OSError, pa.ArrowInvalid):
        return (), None
    if META_SOURCES not in meta:
        return (), None
    at = meta[META_AT].decode() if META_AT in meta else None
    return tuple(json.loads(meta[META_SOURCES])), at


def compacted_from(path: Path) -> tuple[list[str], datetime | None]:
    """The names of the parts (in the same folder) a merged file replaces, and when it was
    written; ([], None) for a part an append wrote. Footers are read once per file version."""
    if not MERGED_RE.search(path.name):
        return [], None
    if isinstance(path, ObjectFolder):
        try:
            info = path.fs.info(path.key)
        except FileNotFoundError:
            return [], None
        sources, at = _merged_meta(path, str(info.get("ETag")), int(info["size"]))
        return list(sources), (datetime.fromisoformat(at) if at else None)
    try:
        st = path.stat()
    except FileNotFoundError:
        return [], None
    sources, at = _merged_meta(str(path), st.st_mtime_ns, st.st_size)
    return list(sources), (datetime.fromisoformat(at) if at else None)


def live_parts(root: Path) -> list[Path]:
    """The files a reader should read under `root` (recursively), sorted by path: every
    visible part except those a merged file replaces. Listing after a merge gives the merged
    file alone; listing before gives its sources alone; never both, and a merged file
    whose sources a crash left behind hides them."""
    if isinstance(root, ObjectFolder):
        return live_objects(root)[0]
    if not Path(root).is_dir():
        return []
    files = sorted(Path(root).rglob("*.parquet"))
    hidden = {p.parent / s for p in files for s in compacted_from(p)[0]}
    return [p for p in files if p not in hidden]


def live_objects(root: ObjectFolder) -> tuple[list[ObjectFolder], dict[str, int]]:
    """`live_parts` on object storage, and every listed object's size."""
    files, sizes = _objects_under(root)  # one listing request per 1,000 objects
    hidden = {p.parent / s for p in files for s in compacted_from(p)[0]}
    return [p for p in files if p not in hidden], sizes


def clean_leftovers(root: Path) -> int:
    """Remove temp parts under `root` (recursively) whose writer process is gone; return how many.

    Temp files of live writers (this process included) are left alone, as are files whose name
    this module did not make. A temp file from another host is removed only after a day.
    On object storage there are none (a part is one PUT).
    """
    if isinstance(root, ObjectFolder):
        return 0
    root = Path(root)
    if not root.exists():
        return 0
    host, now, removed = _host(), time.time(), 0
    for path in root.rglob(f"*{TMP_SUFFIX}"):
        m = _TMP_RE.match(path.name)
        if m is None:
            continue
        if m["host"] == host:
            dead = not _pid_alive(int(m["pid"]))
        else:
            try:
                dead = now - path.stat().st_mtime > FOREIGN_STALE_SECONDS
            except FileNotFoundError:
                continue
        if dead:
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:  # another cleaner got there first
                pass
    return removed


def utc_dates(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The UTC calendar date of each timestamp (tz-aware timestamps only)."""
    if not pa.types.is_timestamp(column.type) or column.type.tz is None:
        raise ValueError(
            f"timestamp column has type {column.type}: expected timestamp[us, tz=UTC] "
            "(time-zone aware, so that the partition date is unambiguous)"
        )
    dates = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.date32())
    return dates.combine_chunks() if isinstance(dates, pa.ChunkedArray) else dates


def write_partitioned(
    table: pa.Table, root: Path, date_column: str = "ts", layout: ParquetLayout = DEFAULT_LAYOUT
) -> list[Path]:
    """Split `table` by the UTC date of `date_column` and write one part per
    `root/date=YYYY-MM-DD/` folder (hive layout: DuckDB reads `date` back as a column).

    A table whose rows share one date (the usual batch: minutes of traffic) is written as it
    is, without the per-date `filter` copy.
    """
    if date_column not in table.column_names:
        raise ValueError(f"column {date_column!r} is missing: the partition date comes from it")
    if table.num_rows == 0:
        return []
    if table[date_column].null_count:
        raise ValueError(f"column {date_column!r} has nulls: every row needs a timestamp")
    dates = utc_dates(table[date_column])
    bounds = pc.min_max(dates)
    day = bounds["min"].as_py()
    root = root if isinstance(root, ObjectFolder) else Path(root)
    if day == bounds["max"].as_py():
        return [write_part(table, root / f"date={day.isoformat()}", layout=layout)]
    paths = []
    for day in sorted(pc.unique(dates).to_pylist()):
        part = table.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
        paths.append(write_part(part, root / f"date={day.isoformat()}", layout=layout))
    return paths
