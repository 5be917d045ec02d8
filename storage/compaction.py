"""Compaction of the append-only logs: a partition's many small parts merged into files of
about `[storage] compact_target_mb`, as table formats do (Delta's OPTIMIZE, Iceberg's
rewrite of data files), without a manifest the readers would have to consult.

Every append is a part file: a serving endpoint with group commit makes thousands an hour,
and a reader's planning time and memory grow with the file count. Compaction keeps the
count near (log size / target size) while keeping the log's contract:

* **Readers see every row exactly once, before, during and after.** The merged file holds
  the same rows as its sources (less the duplicates no reader could see: the readers' own
  dedup rule, `storage.log_views.DEDUP`, applied within the group). It is written under a
  hidden temporary name, fsynced and renamed into place; from then on a reader sees both
  the merged file and its sources, and its dedup (by request id, or by label event) keeps
  one row of each. Sources are deleted only `compact_grace_s` later, so that a query that
  listed the files before the swap can still open them.
* **"First logged wins" survives.** Readers order duplicates by (`ts`, file, row). A group
  is a run of parts adjacent in name order (`compaction_plan.py`); its rows are written in
  that order; its file is named after its last source (`<last>-c<hex8>.parquet`), so it
  sorts exactly where its sources did, and a part that appears later (names are stamped
  when a part becomes visible) sorts after it.
* **Writers keep appending.** Only parts listed when the run started, and older than
  `compact_min_age_s`, are merged; newer parts are never touched.
* **A crash leaves nothing lost or doubled.** Killed before the rename: only a temp file,
  removed by the next open of the data home (or the next run). Killed after: the merged
  file names its sources in its Parquet metadata (`loopwright.compacted_from`), readers
  dedup the overlap, and the next run deletes those sources instead of merging them again.

One run at a time per log (an exclusive lock file); a second run finds it taken and does
nothing. The label and queue logs compact the same way, with their own dedup keys.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.compaction_plan import Group, describe, plan_groups
from storage.duckdb_conn import open_duckdb
from storage.home import DataHome, StorageError
from storage.log_views import DEDUP, literal
from storage.objects import ObjectFolder
from storage.parquet_parts import (
    DEFAULT_LAYOUT,
    META_AT,
    META_SOURCES,
    ParquetLayout,
    clean_leftovers,
    compacted_from,
    publish,
    temp_path,
    visible_parts,
)
from storage.settings import StorageSettings

ROW_GROUP_ROWS = 131_072
LOGS = ("predictions", "labels", "queue")
_SUFFIX_RE = re.compile(r"(-c[0-9a-f]{8})+\Z")


def _schema_and_layout(log: str) -> tuple[pa.Schema, ParquetLayout]:
    from storage.prediction_log import PREDICTION_LAYOUT
    from storage.schemas import LABEL_SCHEMA, PREDICTION_SCHEMA, QUEUE_SCHEMA

    return {
        "predictions": (PREDICTION_SCHEMA, PREDICTION_LAYOUT),
        "labels": (LABEL_SCHEMA, DEFAULT_LAYOUT),
        "queue": (QUEUE_SCHEMA, DEFAULT_LAYOUT),
    }[log]


@dataclass
class LogReport:
    """What one run did to one log."""

    log: str
    partitions: int = 0
    files_before: int = 0
    files_after: int = 0
    groups: int = 0  # merged files written
    parts_merged: int = 0
    rows_in: int = 0
    rows_out: int = 0  # rows_in less the duplicates readers never saw
    bytes_in: int = 0
    bytes_out: int = 0
    deleted: int = 0  # superseded files removed (of this run and of earlier ones)
    waiting_deletion: int = 0  # superseded files still inside the grace period
    skipped: list[str] = field(default_factory=list)  # groups left alone, and why
    locked: bool = False  # another run held the lock: nothing was done
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def merged_name(last: Path) -> str:
    """`<last source's stem>-c<hex8>.parquet`: sorts right before its last source and after
    every file that sorted before it ("-" < "."), i.e. where its group was.

    >>> merged_name(Path("part-20260101T000000000000Z-7-0123abcd-c89abcdef.parquet"))[:40]
    'part-20260101T000000000000Z-7-0123abcd-c'
    """
    stem = _SUFFIX_RE.sub("", last.name.removesuffix(".parquet"))
    return f"{stem}-c{uuid.uuid4().hex[:8]}.parquet"


@contextmanager
def _exclusive(folder: Path) -> Iterator[bool]:
    with open(folder / ".compact.lock", "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _losers(sources: tuple[Path, ...], log: str, settings: StorageSettings) -> set[tuple[int, int]]:
    """(source index, row number) of the rows the readers' dedup rule hides within the group
    (usually none: an id appended twice). Reads the key columns only."""
    key, order = DEDUP[log]
    files = "[" + ", ".join(literal(str(p)) for p in sources) + "]"
    sql = f"""SELECT file_index, file_row_number FROM (
                SELECT *, file_index FROM read_parquet({files}, union_by_name=true,
                  hive_partitioning=false, file_row_number=true))
              QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) > 1"""
    con = open_duckdb(settings)
    try:
        return {(int(f), int(r)) for f, r in con.execute(sql).fetchall()}
    finally:
        con.close()


def _conformed(batch: pa.RecordBatch, schema: pa.Schema, source: Path) -> pa.Table:
    extra = [n for n in batch.schema.names if n not in schema.names]
    if extra:
        raise StorageError(
            f"{source} has columns {extra} outside the log's schema: merging would drop them; "
            "move the file out of the log, or leave it (it is skipped)"
        )
    n = batch.num_rows
    cols = [
        batch.column(f.name).cast(f.type) if f.name in batch.schema.names else pa.nulls(n, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(cols, schema=schema)


def merge_group(
    group: Group,
    log: str,
    settings: StorageSettings,
    on_event: Callable[[str], None] = lambda event: None,
) -> tuple[Path, int, int]:
    """Write the group's rows, in source order and without the duplicates readers hide, to
    one new file next to them, atomically; return (path, rows read, rows written). Memory:
    one row group (`ROW_GROUP_ROWS`) at a time. The sources stay until their grace is over."""
    schema, layout = _schema_and_layout(log)
    losers = _losers(group.sources, log, settings)
    meta = {
        META_SOURCES: json.dumps([p.name for p in group.sources]).encode(),
        META_AT: datetime.now(UTC).isoformat().encode(),
    }
    folder = group.sources[0].parent
    tmp = temp_path(folder)
    rows_in = rows_out = 0
    pending: list[pa.Table] = []
    try:
        with pq.ParquetWriter(
            tmp, schema.with_metadata(meta), **layout.write_options(schema)
        ) as writer:
            on_event(f"writing {tmp.name}")
            for index, source in enumerate(group.sources):
                offset = 0
                for batch in pq.ParquetFile(source).iter_batches(batch_size=65_536):
                    table = _conformed(batch, schema, source)
                    if losers:
                        keep = [(index, offset + i) not in losers for i in range(batch.num_rows)]
                        table = table.filter(pa.array(keep))
                    rows_in += batch.num_rows
                    rows_out += table.num_rows
                    offset += batch.num_rows
                    pending.append(table)
                    if sum(t.num_rows for t in pending) >= ROW_GROUP_ROWS:
                        writer.write_table(pa.concat_tables(pending), ROW_GROUP_ROWS)
                        pending.clear()
            if pending:
                writer.write_table(pa.concat_tables(pending), ROW_GROUP_ROWS)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        final = publish(tmp, folder / merged_name(group.sources[-1]))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final, rows_in, rows_out


def sweep(folder: Path, grace_s: float, now: float | None = None) -> tuple[int, int]:
    """Delete the sources of merged files visible for at least `grace_s` seconds (since their
    last write, which precedes the rename by an fsync; a source that is itself a merged file
    loses its own sources first); return (deleted, waiting)."""
    now = time.time() if now is None else now
    deleted = waiting = 0

    def drop(name: str) -> int:
        path = folder / name
        n = sum(drop(s) for s in compacted_from(path)[0])
        try:
            path.unlink()
        except FileNotFoundError:
            return n
        return n + 1

    for path in visible_parts(folder):
        sources, at = compacted_from(path)
        present = [s for s in sources if (folder / s).exists()]
        if not present:
            continue
        try:
            since = max(at.timestamp() if at else 0.0, path.stat().st_mtime)
        except FileNotFoundError:  # merged again and removed by another step meanwhile
            continue
        if now - since >= grace_s:
            deleted += sum(drop(s) for s in present)
        else:
            waiting += len(present)
    return deleted, waiting


def compact_partition(
    folder: Path,
    log: str,
    settings: StorageSettings,
    report: LogReport,
    on_event: Callable[[str], None] = lambda event: None,
) -> None:
    started = time.time()
    files = visible_parts(folder)
    report.files_before += len(files)
    report.deleted += sweep(folder, settings.compact_grace_s, started)[0]
    files = visible_parts(folder)
    superseded = {s for p in files for s in compacted_from(p)[0]}
    for group in plan_groups(describe(files, started), superseded, settings):
        on_event(f"merging {len(group.sources)} parts in {folder.name}")
        try:
            path, rows_in, rows_out = merge_group(group, log, settings, on_event)
        except StorageError as err:
            report.skipped.append(str(err))
            continue
        on_event(f"published {path.name}")
        report.groups += 1
        report.parts_merged += len(group.sources)
        report.rows_in += rows_in
        report.rows_out += rows_out
        report.bytes_in += group.bytes
        report.bytes_out += path.stat().st_size
    deleted, waiting = sweep(folder, settings.compact_grace_s)
    report.deleted += deleted
    report.waiting_deletion += waiting
    report.files_after += len(visible_parts(folder))


def compact_log(
    home: DataHome,
    log: str = "predictions",
    settings: StorageSettings | None = None,
    on_event: Callable[[str], None] = lambda event: None,
) -> LogReport:
    """Compact one log (`predictions`, `labels` or `queue`) of `home`, partition by
    partition; the module docstring says what readers and writers may rely on meanwhile.
    `on_event` hears each step ("merging ...", "writing <temp file>", "published ...") as it
    happens."""
    if log not in LOGS:
        raise StorageError(f"log {log!r} cannot be compacted: choose one of {list(LOGS)}")
    settings = settings or StorageSettings()
    root: Path = getattr(home, log)
    report = LogReport(log)
    if isinstance(root, ObjectFolder):
        # its lock is a flock on the log's disk: no such lock on object storage (yet)
        report.skipped.append(
            f"{root}: compaction of logs on object storage is not supported yet "
            "(readers are unaffected; parts accumulate)"
        )
        return report
    if not root.is_dir():
        return report
    t0 = time.perf_counter()
    with _exclusive(root) as mine:
        if not mine:
            report.locked = True
            return report
        clean_leftovers(root)
        for folder in sorted({p.parent for p in root.rglob("*.parquet")}):
            report.partitions += 1
            compact_partition(folder, log, settings, report, on_event)
    report.seconds = round(time.perf_counter() - t0, 3)
    return report
